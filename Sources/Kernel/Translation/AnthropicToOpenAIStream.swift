import Foundation

/// An Anthropic Messages event stream as OpenAI `chat.completion.chunk` events.
struct AnthropicToOpenAIStream: EventTranslator {
    /// Whether the client asked for the final usage chunk (`stream_options.include_usage`).
    let includeUsage: Bool
    private var chunks = ChatChunks()
    private var toolIndexByBlock: [Int: Int] = [:]
    private var usage = Usage(inputTokens: 0, outputTokens: 0)
    private var isDone = false

    init(includeUsage: Bool) {
        self.includeUsage = includeUsage
    }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        guard let json = event.json else { return [] }
        switch json["type"]?.string ?? event.event {
        case "message_start":
            let message = json["message"] ?? .object()
            chunks.id = ResponseTranslation.completionID(fromMessageID: message["id"]?.string)
            chunks.model = message["model"] ?? ""
            usage = Usage(anthropic: message["usage"]) ?? usage
            return [chunks.chunk(["role": "assistant", "content": ""])]
        case "content_block_start":
            let block = json["content_block"] ?? .object()
            if block["type"]?.string == "tool_use" {
                let index = toolIndexByBlock.count
                toolIndexByBlock[json["index"]?.int ?? 0] = index
                let call: JSON = ["index": JSON(index), "id": block["id"] ?? "", "type": "function",
                                  "function": ["name": block["name"] ?? "", "arguments": ""]]
                return [chunks.chunk(["tool_calls": [call]])]
            }
            if let text = block["text"]?.string, !text.isEmpty { return [chunks.chunk(["content": JSON(text)])] }
            return []
        case "content_block_delta":
            let delta = json["delta"] ?? .object()
            switch delta["type"]?.string {
            case "text_delta":
                return [chunks.chunk(["content": delta["text"] ?? ""])]
            case "thinking_delta":
                return [chunks.chunk(["reasoning_content": delta["thinking"] ?? ""])]
            case "signature_delta":
                return [chunks.chunk([Reasoning.signatureKey: delta["signature"] ?? ""])]
            case "input_json_delta":
                guard let index = toolIndexByBlock[json["index"]?.int ?? -1] else { return [] }
                let call: JSON = ["index": JSON(index), "function": ["arguments": delta["partial_json"] ?? ""]]
                return [chunks.chunk(["tool_calls": [call]])]
            default:
                return []
            }
        case "message_delta":
            if let output = json["usage"]?["output_tokens"]?.tokenCount { usage.outputTokens = output }
            if let input = json["usage"]?["input_tokens"]?.tokenCount, let total = Usage(anthropic: json["usage"]), input > 0 {
                usage.inputTokens = total.inputTokens
                usage.cachedInputTokens = total.cachedInputTokens
            }
            let reason = StopReason.openAI(fromAnthropic: json["delta"]?["stop_reason"]?.string) ?? "stop"
            return [chunks.chunk(.object(), finishReason: reason)]
        case "message_stop":
            isDone = true
            var events: [SSEEvent] = []
            if includeUsage {
                events.append(chunks.usage(usage.openAIJSON))
            }
            return events + [.done]
        case "error":
            throw GatewayError(anthropicStreamError: json)
        default:
            return []  // ping, and event types added later
        }
    }

    mutating func finish() throws -> [SSEEvent] {
        guard isDone else { throw UpstreamError.failed("the provider's stream ended before message_stop") }
        return []
    }


}
