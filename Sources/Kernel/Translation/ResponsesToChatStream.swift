import Foundation

/// A Responses API event stream as OpenAI `chat.completion.chunk` events: a role chunk, content,
/// reasoning and tool call deltas, a finish chunk, the usage chunk when asked for, then [DONE].
struct ResponsesToChatStream: EventTranslator {
    /// Whether the client asked for the final usage chunk (`stream_options.include_usage`).
    let includeUsage: Bool
    private var id = "chatcmpl-sluice"
    private var model = JSON("")
    private var created = JSON(Int(Date().timeIntervalSince1970))
    private var isStarted = false
    private var isDone = false
    /// Chat's tool call index for each function call item, by output index, and whether any of
    /// its arguments were sent yet.
    private var toolCalls: [Int: (index: Int, sentArguments: Bool)] = [:]

    init(includeUsage: Bool) {
        self.includeUsage = includeUsage
    }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        guard !isDone, let json = event.json else { return [] }
        let type = json["type"]?.string ?? event.event
        if type == "error" { throw ResponseObject.failure(json["error"].flatMap { $0.isObject ? $0 : nil } ?? json) }
        if type == "response.failed" { throw ResponseObject.failure(json["response"]?["error"]) }
        var events = start(json["response"])
        switch type {
        case "response.output_item.added":
            let item = json["item"] ?? .object()
            guard item["type"]?.string == "function_call" else { break }
            let index = toolCalls.count
            toolCalls[json["output_index"]?.int ?? -1] = (index, false)
            let call: JSON = ["index": JSON(index), "id": item["call_id"] ?? "", "type": "function",
                              "function": ["name": item["name"] ?? "", "arguments": ""]]
            events.append(chunk(["tool_calls": [call]]))
        case "response.output_text.delta":
            events.append(chunk(["content": json["delta"] ?? ""]))
        case "response.refusal.delta":
            events.append(chunk(["refusal": json["delta"] ?? ""]))
        case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
            events.append(chunk(["reasoning_content": json["delta"] ?? ""]))
        case "response.function_call_arguments.delta":
            events += arguments(json["delta"]?.string ?? "", outputIndex: json["output_index"]?.int)
        case "response.function_call_arguments.done", "response.output_item.done":
            // A provider may send the arguments whole, with no deltas before.
            let outputIndex = json["output_index"]?.int
            guard let call = toolCalls[outputIndex ?? -1], !call.sentArguments else { break }
            events += arguments(json["arguments"]?.string ?? json["item"]?["arguments"]?.string ?? "", outputIndex: outputIndex)
        case "response.completed", "response.incomplete":
            isDone = true
            let response = json["response"] ?? .object()
            events.append(chunk(.object(), finishReason: ResponseObject.finishReason(response, hasToolCalls: !toolCalls.isEmpty)))
            if includeUsage {
                var last = envelope()
                last["choices"] = .array()
                last["usage"] = ResponseObject.chatUsage(fromResponses: response["usage"]) ?? Usage(inputTokens: 0, outputTokens: 0).openAIJSON
                events.append(SSEEvent(data: last.description))
            }
            events.append(.done)
        default:
            break  // the done events repeat what the deltas said; the rest has no chat form
        }
        return events
    }

    mutating func finish() throws -> [SSEEvent] {
        guard isDone else { throw UpstreamError.failed("the provider's stream ended before response.completed") }
        return []
    }

    private mutating func arguments(_ arguments: String, outputIndex: Int?) -> [SSEEvent] {
        guard let outputIndex, let call = toolCalls[outputIndex], !arguments.isEmpty else { return [] }
        toolCalls[outputIndex]?.sentArguments = true
        return [chunk(["tool_calls": [["index": JSON(call.index), "function": ["arguments": JSON(arguments)]]]])]
    }

    /// The role chunk, before anything else; the id, model and time come from the first Response seen.
    private mutating func start(_ response: JSON?) -> [SSEEvent] {
        guard !isStarted else { return [] }
        isStarted = true
        if let response {
            id = ResponseObject.completionID(fromResponseID: response["id"]?.string)
            model = response["model"] ?? ""
            if let createdAt = response["created_at"]?.int { created = JSON(createdAt) }
        }
        return [chunk(["role": "assistant", "content": ""])]
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
