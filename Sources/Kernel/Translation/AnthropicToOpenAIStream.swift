import Foundation

/// An Anthropic Messages event stream as OpenAI `chat.completion.chunk` events.
struct AnthropicToOpenAIStream: EventTranslator {
    /// Whether the client asked for the final usage chunk (`stream_options.include_usage`).
    let includeUsage: Bool
    private var id = "chatcmpl-sluice"
    private var model = JSON("")
    private let created = JSON(Int(Date().timeIntervalSince1970))
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
            id = ResponseTranslation.completionID(fromMessageID: message["id"]?.string)
            model = message["model"] ?? ""
            usage = Usage(anthropic: message["usage"]) ?? usage
            return [chunk(["role": "assistant", "content": ""])]
        case "content_block_start":
            let block = json["content_block"] ?? .object()
            if block["type"]?.string == "tool_use" {
                let index = toolIndexByBlock.count
                toolIndexByBlock[json["index"]?.int ?? 0] = index
                let call: JSON = ["index": JSON(index), "id": block["id"] ?? "", "type": "function",
                                  "function": ["name": block["name"] ?? "", "arguments": ""]]
                return [chunk(["tool_calls": [call]])]
            }
            if let text = block["text"]?.string, !text.isEmpty { return [chunk(["content": JSON(text)])] }
            return []
        case "content_block_delta":
            let delta = json["delta"] ?? .object()
            switch delta["type"]?.string {
            case "text_delta":
                return [chunk(["content": delta["text"] ?? ""])]
            case "thinking_delta":
                return [chunk(["reasoning_content": delta["thinking"] ?? ""])]
            case "signature_delta":
                return [chunk([Reasoning.signatureKey: delta["signature"] ?? ""])]
            case "input_json_delta":
                guard let index = toolIndexByBlock[json["index"]?.int ?? -1] else { return [] }
                let call: JSON = ["index": JSON(index), "function": ["arguments": delta["partial_json"] ?? ""]]
                return [chunk(["tool_calls": [call]])]
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
            return [chunk(.object(), finishReason: reason)]
        case "message_stop":
            isDone = true
            var events: [SSEEvent] = []
            if includeUsage {
                var last = envelope()
                last["choices"] = .array()
                last["usage"] = usage.openAIJSON
                events.append(SSEEvent(data: last.description))
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

    private func envelope() -> JSON {
        ["id": JSON(id), "object": "chat.completion.chunk", "created": created, "model": model]
    }

    private func chunk(_ delta: JSON, finishReason: String? = nil) -> SSEEvent {
        var json = envelope()
        json["choices"] = [["index": 0, "delta": delta, "logprobs": .null, "finish_reason": finishReason.map { JSON($0) } ?? .null]]
        return SSEEvent(data: json.description)
    }
}
