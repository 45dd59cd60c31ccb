import Foundation

/// An OpenAI `chat.completion.chunk` stream as the Responses API event sequence:
/// response.created → response.in_progress → for each output item (reasoning, message, function
/// call) output_item.added → its part and delta events → output_item.done → response.completed
/// (or response.incomplete), every event numbered by `sequence_number`.
struct ChatToResponsesStream: EventTranslator {
    /// The Responses request the client sent: the Response echoes its settings.
    let asked: JSON
    private var sequenceNumber = 0
    private var isStarted = false
    private var isDone = false
    private var base = "sluice"
    private let fixedBase: String?
    /// Anthropic's signature of the reasoning, which arrives after its text.
    private var reasoningSignature: String?
    private var model = JSON("")
    private var createdAt: Int?
    private var output: [JSON] = []
    private var open: OpenItem?
    private var finishReason: String?
    private var usage = JSON.null

    /// The output item being streamed.
    private enum OpenItem {
        case reasoning(id: String, text: String)
        /// A message's parts so far; the last one is being streamed.
        case message(id: String, parts: [Part])
        case functionCall(id: String, chatIndex: Int, callID: String, name: String, arguments: String)
    }

    private enum Part {
        case text(String)
        case refusal(String)

        var json: JSON {
            switch self {
            case .text(let text): ResponseObject.outputText(text)
            case .refusal(let refusal): ["type": "refusal", "refusal": JSON(refusal)]
            }
        }
    }

    /// `base` names the Response and its items; without one it comes from the first chunk's id.
    init(asked: JSON, base: String? = nil) {
        self.asked = asked
        self.fixedBase = base
    }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        if event.isDone { return try close() }
        guard let json = event.json else { return [] }
        if let error = json["error"], error.isObject {
            throw UpstreamFailure.error(status: 502, headers: [:], body: .init(string: json.description))
        }
        guard !isDone else { return [] }
        var events = start(json)
        if let found = json["usage"], found.isObject { usage = ResponseObject.usage(fromOpenAI: found) }
        guard let choice = json["choices"]?[0] else { return events }
        let delta = choice["delta"] ?? .object()
        if let text = ResponseObject.reasoningText(delta), !text.isEmpty { events += reasoning(text) }
        if let signature = delta[Reasoning.signatureKey]?.string { reasoningSignature = (reasoningSignature ?? "") + signature }
        if let text = delta["content"]?.string, !text.isEmpty { events += messagePart(.text(text)) }
        if let text = delta["refusal"]?.string, !text.isEmpty { events += messagePart(.refusal(text)) }
        for call in delta["tool_calls"]?.elements ?? [] { events += toolCall(call) }
        if let reason = choice["finish_reason"]?.string {
            finishReason = reason
            events += closeItem()
        }
        return events
    }

    mutating func finish() throws -> [SSEEvent] {
        if isDone { return [] }
        // Some servers end without [DONE]; a stream with a finish reason still ended properly.
        return try close()
    }

    // MARK: Items

    private mutating func reasoning(_ delta: String) -> [SSEEvent] {
        var events: [SSEEvent] = []
        if case .reasoning(let id, let text) = open {
            open = .reasoning(id: id, text: text + delta)
        } else {
            events += closeItem()
            let id = ResponseObject.itemID("rs", base, output.count)
            open = .reasoning(id: id, text: delta)
            events.append(emit("response.output_item.added", ["output_index": JSON(output.count),
                                                               "item": ResponseObject.reasoningItem(id: id, text: "")]))
            events.append(emit("response.reasoning_summary_part.added", ["item_id": JSON(id), "output_index": JSON(output.count),
                                                                          "summary_index": 0, "part": summaryPart("")]))
        }
        guard case .reasoning(let id, _) = open else { return events }
        events.append(emit("response.reasoning_summary_text.delta", ["item_id": JSON(id), "output_index": JSON(output.count),
                                                                      "summary_index": 0, "delta": JSON(delta)]))
        return events
    }

    private mutating func messagePart(_ delta: Part) -> [SSEEvent] {
        var events: [SSEEvent] = []
        var id: String
        var parts: [Part]
        if case .message(let openID, let openParts) = open {
            (id, parts) = (openID, openParts)
        } else {
            events += closeItem()
            id = ResponseObject.itemID("msg", base, output.count)
            parts = []
            events.append(emit("response.output_item.added", ["output_index": JSON(output.count),
                                                               "item": ResponseObject.messageItem(id: id, status: "in_progress", content: [])]))
        }
        switch (parts.last, delta) {
        case (.text(let text)?, .text(let more)): parts[parts.count - 1] = .text(text + more)
        case (.refusal(let text)?, .refusal(let more)): parts[parts.count - 1] = .refusal(text + more)
        default:
            if parts.last != nil { events += closePart(id: id, parts: parts) }
            let empty: Part
            switch delta {
            case .text: empty = .text("")
            case .refusal: empty = .refusal("")
            }
            events.append(emit("response.content_part.added", ["item_id": JSON(id), "output_index": JSON(output.count),
                                                                "content_index": JSON(parts.count), "part": empty.json]))
            parts.append(delta)
        }
        let location: JSON = ["item_id": JSON(id), "output_index": JSON(output.count), "content_index": JSON(parts.count - 1)]
        switch delta {
        case .text(let text):
            events.append(emit("response.output_text.delta", location, ["delta": JSON(text), "logprobs": .array()]))
        case .refusal(let text):
            events.append(emit("response.refusal.delta", location, ["delta": JSON(text)]))
        }
        open = .message(id: id, parts: parts)
        return events
    }

    private mutating func toolCall(_ call: JSON) -> [SSEEvent] {
        var events: [SSEEvent] = []
        let chatIndex = call["index"]?.int ?? 0
        let arguments = call["function"]?["arguments"]?.string ?? ""
        if case .functionCall(let id, let openIndex, let callID, let name, let earlier) = open, openIndex == chatIndex {
            open = .functionCall(id: id, chatIndex: chatIndex, callID: callID, name: name, arguments: earlier + arguments)
        } else {
            events += closeItem()
            let id = ResponseObject.itemID("fc", base, output.count)
            let callID = call["id"]?.string ?? "call_\(base)_\(output.count)"
            let name = call["function"]?["name"]?.string ?? ""
            open = .functionCall(id: id, chatIndex: chatIndex, callID: callID, name: name, arguments: arguments)
            events.append(emit("response.output_item.added", [
                "output_index": JSON(output.count),
                "item": ResponseObject.functionCallItem(id: id, status: "in_progress", callID: callID, name: name, arguments: ""),
            ]))
        }
        guard case .functionCall(let id, _, _, _, _) = open, !arguments.isEmpty else { return events }
        events.append(emit("response.function_call_arguments.delta", ["item_id": JSON(id), "output_index": JSON(output.count),
                                                                       "delta": JSON(arguments)]))
        return events
    }

    /// The done events of the open item; the item joins the output.
    private mutating func closeItem() -> [SSEEvent] {
        guard let item = open else { return [] }
        open = nil
        let index = JSON(output.count)
        let status = ResponseObject.Outcome(finishReason: finishReason).itemStatus
        var events: [SSEEvent] = []
        let done: JSON
        switch item {
        case .reasoning(let id, let text):
            events.append(emit("response.reasoning_summary_text.done", ["item_id": JSON(id), "output_index": index, "summary_index": 0,
                                                                         "text": JSON(text)]))
            events.append(emit("response.reasoning_summary_part.done", ["item_id": JSON(id), "output_index": index, "summary_index": 0,
                                                                         "part": summaryPart(text)]))
            done = ResponseObject.reasoningItem(id: id, text: text, signature: reasoningSignature)
        case .message(let id, let parts):
            events += closePart(id: id, parts: parts)
            done = ResponseObject.messageItem(id: id, status: status, content: parts.map(\.json))
        case .functionCall(let id, _, let callID, let name, let arguments):
            events.append(emit("response.function_call_arguments.done", ["item_id": JSON(id), "output_index": index,
                                                                          "arguments": JSON(arguments), "name": JSON(name)]))
            done = ResponseObject.functionCallItem(id: id, status: status, callID: callID, name: name, arguments: arguments)
        }
        events.append(emit("response.output_item.done", ["output_index": index, "item": done]))
        output.append(done)
        return events
    }

    /// The done events of a message's last part.
    private mutating func closePart(id: String, parts: [Part]) -> [SSEEvent] {
        guard let part = parts.last else { return [] }
        let location: JSON = ["item_id": JSON(id), "output_index": JSON(output.count), "content_index": JSON(parts.count - 1)]
        let done: SSEEvent
        switch part {
        case .text(let text): done = emit("response.output_text.done", location, ["text": JSON(text), "logprobs": .array()])
        case .refusal(let text): done = emit("response.refusal.done", location, ["refusal": JSON(text)])
        }
        return [done, emit("response.content_part.done", location, ["part": part.json])]
    }

    private func summaryPart(_ text: String) -> JSON {
        ["type": "summary_text", "text": JSON(text)]
    }

    // MARK: Start and end

    private mutating func start(_ chunk: JSON) -> [SSEEvent] {
        guard !isStarted else { return [] }
        isStarted = true
        base = fixedBase ?? ResponseObject.baseID(chunk["id"]?.string, prefix: "chatcmpl-")
        model = chunk["model"] ?? ""
        createdAt = chunk["created"]?.int
        let response = envelope(.inProgress)
        return [emit("response.created", ["response": response]), emit("response.in_progress", ["response": response])]
    }

    private mutating func close() throws -> [SSEEvent] {
        guard !isDone else { return [] }
        guard finishReason != nil else { throw UpstreamError.failed("the provider's stream ended before its last chunk") }
        isDone = true
        var events = closeItem()
        let outcome = ResponseObject.Outcome(finishReason: finishReason)
        var response = envelope(outcome)
        response["usage"] = usage
        events.append(emit(outcome.status == "incomplete" ? "response.incomplete" : "response.completed", ["response": response]))
        return events
    }

    private func envelope(_ outcome: ResponseObject.Outcome) -> JSON {
        ResponseObject.envelope(asked: asked, id: "resp_" + base, model: model, createdAt: createdAt, outcome: outcome, output: output)
    }

    /// An event named `type`, its data `type` and `sequence_number` then the members given.
    private mutating func emit(_ type: String, _ members: JSON, _ more: JSON = .object()) -> SSEEvent {
        var data: JSON = ["type": JSON(type), "sequence_number": JSON(sequenceNumber)]
        for (key, value) in members.members + more.members { data[key] = value }
        sequenceNumber += 1
        return SSEEvent(event: type, data: data.description)
    }
}
