import Foundation
import Kernel

/// A ConverseStream's events (named by `:event-type`, see `EventStreamSequence`) as OpenAI
/// `chat.completion.chunk` events: messageStart → the role; contentBlockStart of a tool use →
/// the call's id and name; contentBlockDelta → text or argument pieces; messageStop → the
/// finish reason; metadata (after messageStop) → the usage, then `[DONE]`.
struct ConverseStreamToChat: EventTranslator {
    let id: String
    let model: JSON
    /// Whether the client asked for the final usage chunk (`stream_options.include_usage`).
    let includeUsage: Bool
    let onUsage: @Sendable (Usage) -> Void
    private let created = JSON(Int(Date().timeIntervalSince1970))
    private var toolIndexByBlock: [Int: Int] = [:]
    private var stopped = false
    private var done = false

    init(id: String, model: String, includeUsage: Bool, onUsage: @escaping @Sendable (Usage) -> Void) {
        self.id = id
        self.model = JSON(model)
        self.includeUsage = includeUsage
        self.onUsage = onUsage
    }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        guard !done, let json = event.json else { return [] }
        switch event.event {
        case "messageStart":
            return [chunk(["role": "assistant", "content": ""])]
        case "contentBlockStart":
            guard let use = json["start"]?["toolUse"] else { return [] }
            let index = toolIndexByBlock.count
            toolIndexByBlock[json["contentBlockIndex"]?.int ?? 0] = index
            let call: JSON = ["index": JSON(index), "id": JSON(use["toolUseId"]?.string ?? ""), "type": "function",
                              "function": ["name": JSON(use["name"]?.string ?? ""), "arguments": ""]]
            return [chunk(["tool_calls": [call]])]
        case "contentBlockDelta":
            let delta = json["delta"] ?? .object()
            if let text = delta["text"]?.string {
                return text.isEmpty ? [] : [chunk(["content": JSON(text)])]
            }
            if let input = delta["toolUse"]?["input"]?.string,
               let index = toolIndexByBlock[json["contentBlockIndex"]?.int ?? -1] {
                return [chunk(["tool_calls": [["index": JSON(index), "function": ["arguments": JSON(input)]]]])]
            }
            return []  // reasoning and other deltas have no chat completion form
        case "messageStop":
            stopped = true
            return [chunk(.object(), finishReason: ConverseToChat.finishReason(json["stopReason"]?.string))]
        case "metadata":
            var events: [SSEEvent] = []
            if let usage = ConverseToChat.usage(json["usage"]) {
                onUsage(usage)
                if includeUsage {
                    var last = envelope()
                    last["choices"] = .array()
                    last["usage"] = usage.openAIJSON
                    events.append(SSEEvent(data: last.description))
                }
            }
            if stopped {
                done = true
                events.append(.done)
            }
            return events
        default:
            return []  // contentBlockStop, and event types added later
        }
    }

    mutating func finish() throws -> [SSEEvent] {
        if done { return [] }
        // The metadata event is what normally closes the stream; its absence costs only the usage.
        guard stopped else { throw UpstreamError.failed("the provider's stream ended before messageStop") }
        done = true
        return [.done]
    }

    private func envelope() -> JSON {
        ["id": JSON(id), "object": "chat.completion.chunk", "created": created, "model": model]
    }

    private func chunk(_ delta: JSON, finishReason: String? = nil) -> SSEEvent {
        var json = envelope()
        json["choices"] = [["index": 0, "delta": delta, "logprobs": .null, "finish_reason": finishReason.map { JSON($0) } ?? .null]]
        return SSEEvent(data: json.description)
    }
}
