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
    private var chunks: ChatChunks
    private var hasID = false
    private var usageMetadata: JSON?
    /// By candidate index: how many tool calls it made, and whether it finished.
    private var candidates: [Int: (toolCalls: Int, isFinished: Bool)] = [:]

    init(model: String, includeUsage: Bool, onUsage: @escaping @Sendable (Usage) -> Void) {
        chunks = ChatChunks(model: JSON(model))
        self.includeUsage = includeUsage
        self.onUsage = onUsage
    }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        guard let json = event.json, json.isObject else { return [] }
        if let error = json["error"], error.isObject {
            throw GeminiFailure.error(status: error["code"]?.int ?? 502, headers: [:], body: .init(string: json.description))
        }
        if !hasID { chunks.id = GeminiToChat.completionID(json["responseId"]?.string); hasID = true }
        if let version = json["modelVersion"]?.string { chunks.model = JSON(version) }
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
            if !said.text.isEmpty { events.append(chunks.chunk(["content": JSON(said.text)], index: index)) }
            for call in said.calls {
                let toolIndex = candidates[index]?.toolCalls ?? 0
                candidates[index]?.toolCalls = toolIndex + 1
                let delta: JSON = ["index": JSON(toolIndex), "id": JSON(call.id), "type": "function",
                                   "function": ["name": JSON(call.name), "arguments": JSON(call.arguments)]]
                events.append(chunks.chunk(["tool_calls": [delta]], index: index))
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
        return [chunks.usage(GeminiToChat.usageJSON(usageMetadata)), .done]
    }

    /// The first chunk of a choice names the role.
    private mutating func start(_ index: Int) -> [SSEEvent] {
        guard candidates[index] == nil else { return [] }
        candidates[index] = (0, false)
        return [chunks.chunk(["role": "assistant", "content": ""], index: index)]
    }

    private mutating func finish(_ index: Int, reason: String) -> SSEEvent {
        candidates[index]?.isFinished = true
        return chunks.chunk(.object(), finishReason: reason, index: index)
    }


}
