
/// An OpenAI `chat.completion.chunk` stream as the Anthropic Messages event sequence:
/// message_start → (content_block_start → content_block_delta… → content_block_stop)… →
/// message_delta → message_stop.
struct OpenAIToAnthropicStream: EventTranslator {
    private var isStarted = false
    private var isDone = false
    private var openBlock: (index: Int, toolIndex: Int?)?
    private var nextBlockIndex = 0
    private var stopReason: String?
    /// nil until the provider reports it (with `stream_options.include_usage`).
    private var usage: Usage?
    /// What `message_start` reports as input when the first chunk carries no usage: OpenAI
    /// streams tell their usage only at the end, and clients show `message_start`'s at once.
    private let estimatedInputTokens: Int

    /// `asked` is the Messages request, from which the input is estimated (about four
    /// characters a token); the exact count follows in `message_delta`.
    init(asked: JSON = .null) {
        var characters = asked["system"]?.textCharacterCount ?? 0
        for message in asked["messages"]?.elements ?? [] { characters += message["content"]?.textCharacterCount ?? 0 }
        estimatedInputTokens = (characters + 3) / 4
    }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        if event.isDone { return close() }
        guard let json = event.json else { return [] }
        if let error = json["error"], error.isObject { throw UpstreamFailure.error(status: 502, headers: [:], body: .init(string: json.description)) }
        var events = start(json)
        if let found = Usage(openAI: json["usage"]) { usage = found }
        guard let choice = json["choices"]?[0] else { return events }
        let delta = choice["delta"] ?? .object()
        if let text = delta["content"]?.string, !text.isEmpty {
            if openBlock == nil || openBlock?.toolIndex != nil {
                events += closeBlock()
                events.append(openNewBlock(["type": "text", "text": ""], toolIndex: nil))
            }
            events.append(Self.event("content_block_delta", ["type": "content_block_delta", "index": JSON(openBlock!.index),
                                                              "delta": ["type": "text_delta", "text": JSON(text)]]))
        }
        for call in delta["tool_calls"]?.elements ?? [] {
            let toolIndex = call["index"]?.int ?? 0
            if openBlock?.toolIndex != toolIndex {
                events += closeBlock()
                let block: JSON = ["type": "tool_use", "id": JSON(call["id"]?.string ?? "toolu_\(toolIndex)"),
                                   "name": JSON(call["function"]?["name"]?.string ?? ""), "input": .object()]
                events.append(openNewBlock(block, toolIndex: toolIndex))
            }
            if let arguments = call["function"]?["arguments"]?.string, !arguments.isEmpty {
                events.append(Self.event("content_block_delta", ["type": "content_block_delta", "index": JSON(openBlock!.index),
                                                                  "delta": ["type": "input_json_delta", "partial_json": JSON(arguments)]]))
            }
        }
        if let reason = choice["finish_reason"]?.string {
            stopReason = StopReason.anthropic(fromOpenAI: reason)
            events += closeBlock()
        }
        return events
    }

    mutating func finish() throws -> [SSEEvent] {
        if isDone { return [] }
        // Some servers end without [DONE]; a stream with a finish reason still ended properly.
        guard stopReason != nil else { throw UpstreamError.failed("the provider's stream ended before its last chunk") }
        return close()
    }

    private mutating func start(_ json: JSON) -> [SSEEvent] {
        guard !isStarted else { return [] }
        isStarted = true
        let message: JSON = [
            "id": JSON(ResponseTranslation.messageID(fromCompletionID: json["id"]?.string)), "type": "message", "role": "assistant",
            "model": json["model"] ?? "", "content": .array(), "stop_reason": .null, "stop_sequence": .null,
            "usage": ["input_tokens": JSON(Usage(openAI: json["usage"])?.inputTokens ?? estimatedInputTokens), "output_tokens": 0],
        ]
        return [Self.event("message_start", ["type": "message_start", "message": message]), Self.event("ping", ["type": "ping"])]
    }

    private mutating func openNewBlock(_ block: JSON, toolIndex: Int?) -> SSEEvent {
        openBlock = (nextBlockIndex, toolIndex)
        defer { nextBlockIndex += 1 }
        return Self.event("content_block_start", ["type": "content_block_start", "index": JSON(nextBlockIndex), "content_block": block])
    }

    private mutating func closeBlock() -> [SSEEvent] {
        guard let block = openBlock else { return [] }
        openBlock = nil
        return [Self.event("content_block_stop", ["type": "content_block_stop", "index": JSON(block.index)])]
    }

    private mutating func close() -> [SSEEvent] {
        guard !isDone else { return [] }
        var events = start(.object()) + closeBlock()
        isDone = true
        // Without the provider's count, message_start's estimate stands: no input_tokens here.
        let finalUsage = usage?.anthropicJSON ?? ["output_tokens": 0]
        events.append(Self.event("message_delta", ["type": "message_delta",
                                                   "delta": ["stop_reason": JSON(stopReason ?? "end_turn"), "stop_sequence": .null],
                                                   "usage": finalUsage]))
        events.append(Self.event("message_stop", ["type": "message_stop"]))
        return events
    }

    private static func event(_ name: String, _ json: JSON) -> SSEEvent {
        SSEEvent(event: name, data: json.description)
    }
}
