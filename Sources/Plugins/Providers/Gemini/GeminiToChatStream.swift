import Foundation
import Kernel

/// A Gemini `streamGenerateContent?alt=sse` stream as OpenAI `chat.completion.chunk` events.
///
/// Each Gemini event is a whole `GenerateContentResponse` holding the next parts of each
/// candidate; a function call arrives whole, so it becomes one tool-call delta with its complete
/// arguments. Gemini sends no end marker: the last event carries the `finishReason`, and the usage
/// chunk (when asked for) and `[DONE]` follow once the stream ends.
struct GeminiToChatStream: EventTranslator {
    /// Whether the client asked for the final usage chunk (`stream_options.include_usage`).
    let includeUsage: Bool
    let onUsage: @Sendable (Usage) -> Void
    private var id: String?
    private var model: JSON
    private let created = JSON(Int(Date().timeIntervalSince1970))
    private var usageMetadata: JSON?
    /// By candidate index: how many tool calls it made, and whether it finished.
    private var candidates: [Int: (toolCalls: Int, isFinished: Bool)] = [:]

    init(model: String, includeUsage: Bool, onUsage: @escaping @Sendable (Usage) -> Void) {
        self.model = JSON(model)
        self.includeUsage = includeUsage
        self.onUsage = onUsage
    }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        guard let json = event.json, json.isObject else { return [] }
        if let error = json["error"], error.isObject {
            throw GeminiFailure.error(status: error["code"]?.int ?? 502, headers: [:], body: .init(string: json.description))
        }
        if id == nil { id = GeminiToChat.completionID(json["responseId"]?.string) }
        if let version = json["modelVersion"]?.string { model = JSON(version) }
        if let metadata = json["usageMetadata"], metadata.isObject { usageMetadata = metadata }
        var events: [SSEEvent] = []
        if GeminiToChat.isBlocked(json) {
            events += start(0)
            events.append(finish(0, reason: "content_filter"))
            return events
        }
        for (position, candidate) in (json["candidates"]?.elements ?? []).enumerated() {
            let index = candidate["index"]?.int ?? position
            events += start(index)
            let said = GeminiToChat.Candidate(candidate)
            if !said.text.isEmpty { events.append(chunk(index, ["content": JSON(said.text)])) }
            for call in said.calls {
                let toolIndex = candidates[index]?.toolCalls ?? 0
                candidates[index]?.toolCalls = toolIndex + 1
                let delta: JSON = ["index": JSON(toolIndex), "id": JSON(call.id), "type": "function",
                                   "function": ["name": JSON(call.name), "arguments": JSON(call.arguments)]]
                events.append(chunk(index, ["tool_calls": [delta]]))
            }
            let calledTools = (candidates[index]?.toolCalls ?? 0) > 0
            if let reason = GeminiToChat.finishReason(candidate["finishReason"]?.string, calledTools: calledTools) {
                events.append(finish(index, reason: reason))
            }
        }
        return events
    }

    mutating func finish() throws -> [SSEEvent] {
        guard !candidates.isEmpty, candidates.values.allSatisfy({ $0.isFinished }) else {
            throw UpstreamError.failed("the provider's stream ended before its last chunk")
        }
        if let usage = GeminiToChat.usage(usageMetadata)?.usage { onUsage(usage) }
        guard includeUsage else { return [.done] }
        var last = envelope()
        last["choices"] = .array()
        last["usage"] = GeminiToChat.usageJSON(usageMetadata)
        return [SSEEvent(data: last.description), .done]
    }

    /// The first chunk of a choice names the role.
    private mutating func start(_ index: Int) -> [SSEEvent] {
        guard candidates[index] == nil else { return [] }
        candidates[index] = (0, false)
        return [chunk(index, ["role": "assistant", "content": ""])]
    }

    private mutating func finish(_ index: Int, reason: String) -> SSEEvent {
        candidates[index]?.isFinished = true
        return chunk(index, .object(), finishReason: reason)
    }

    private func envelope() -> JSON {
        ["id": JSON(id ?? "chatcmpl-sluice"), "object": "chat.completion.chunk", "created": created, "model": model]
    }

    private func chunk(_ index: Int, _ delta: JSON, finishReason: String? = nil) -> SSEEvent {
        var json = envelope()
        json["choices"] = [["index": JSON(index), "delta": delta, "logprobs": .null, "finish_reason": finishReason.map { JSON($0) } ?? .null]]
        return SSEEvent(data: json.description)
    }
}
