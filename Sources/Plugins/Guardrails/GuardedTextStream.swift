import Kernel

/// What a guardrail does to the text of a streamed answer, one piece at a time. `release` gets
/// each new piece of a slot (a choice, a content block, a Responses content part) and returns
/// what may go to the client now; what it holds back comes out with a later piece or when the
/// slot ends (`final`). Throwing ends the stream with an error event in the client's format.
protocol StreamTextFilter {
    mutating func release(_ text: String, slot: Int, final: Bool) throws -> String
    /// After the stream's last event (counts, log lines).
    mutating func finish()
}

/// Runs a `StreamTextFilter` over a streamed answer in any front door's format: the text deltas
/// of Chat Completions chunks, Messages `content_block_delta` events and Responses
/// `response.output_text.delta` events. Held text is flushed before its slot ends; a Responses
/// stream's closing events (`output_text.done`, `content_part.done`, `output_item.done`,
/// `response.completed`) carry the text exactly as it was released, and its events are renumbered
/// when a flush added one.
struct GuardedTextStream<Filter: StreamTextFilter>: EventTranslator {
    var filter: Filter
    /// Released text by Responses slot, for the closing events that repeat it.
    private var released: [Int: String] = [:]
    /// The last chunk seen, a template for a flush of its own at the stream's end (Chat Completions).
    private var lastChunk: (event: SSEEvent, json: JSON)?
    private var openSlots: Set<Int> = []
    /// Events added to a Responses stream so far: later sequence numbers move up by this much.
    private var added = 0

    init(_ filter: Filter) { self.filter = filter }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        if event.isDone { return try flushChat() + [event] }
        guard var json = event.json, json.isObject else { return [event] }
        if let choices = json["choices"], choices.isArray {
            return [try chatChunk(event, &json)]
        }
        guard let type = json["type"]?.string else { return [event] }
        if type.hasPrefix("response.") { return try responsesEvent(event, type: type, &json) }
        return try messagesEvent(event, type: type, &json)
    }

    mutating func finish() throws -> [SSEEvent] {
        let flushed = try flushChat()
        filter.finish()
        return flushed
    }

    // MARK: Chat Completions

    private mutating func chatChunk(_ event: SSEEvent, _ json: inout JSON) throws -> SSEEvent {
        var changed = false
        for (position, choice) in json["choices"]!.elements.enumerated() {
            let slot = choice["index"]?.int ?? position
            let final = choice["finish_reason"].map { !$0.isNull } ?? false
            let text = choice["delta"]?["content"]?.string
            guard text != nil || (final && openSlots.contains(slot)) else { continue }
            let out = try filter.release(text ?? "", slot: slot, final: final)
            if final { openSlots.remove(slot) } else { openSlots.insert(slot) }
            if out != text, var delta = choice["delta"], delta.isObject {
                delta["content"] = JSON(out)
                json["choices"]?[position]?["delta"] = delta
                changed = true
            }
        }
        if !openSlots.isEmpty { lastChunk = (event, json) }
        return changed ? SSEEvent(event: event.event, data: json.description, id: event.id) : event
    }

    /// Slots still holding text when the stream ends without closing them: one chunk each.
    private mutating func flushChat() throws -> [SSEEvent] {
        guard let (template, chunk) = lastChunk else { return [] }
        lastChunk = nil
        var events: [SSEEvent] = []
        for slot in openSlots.sorted() {
            let out = try filter.release("", slot: slot, final: true)
            guard !out.isEmpty else { continue }
            var json = chunk
            json["choices"] = [["index": JSON(slot), "delta": ["content": JSON(out)], "finish_reason": .null]]
            json["usage"] = nil
            events.append(SSEEvent(event: template.event, data: json.description, id: template.id))
        }
        openSlots.removeAll()
        return events
    }

    // MARK: Messages

    private mutating func messagesEvent(_ event: SSEEvent, type: String, _ json: inout JSON) throws -> [SSEEvent] {
        switch type {
        case "content_block_delta":
            guard let text = json["delta"]?["text"]?.string, let slot = json["index"]?.int else { return [event] }
            openSlots.insert(slot)
            let out = try filter.release(text, slot: slot, final: false)
            guard out != text else { return [event] }
            json["delta"]?["text"] = JSON(out)
            return [SSEEvent(event: event.event, data: json.description, id: event.id)]
        case "content_block_stop":
            guard let slot = json["index"]?.int, openSlots.remove(slot) != nil else { return [event] }
            let out = try filter.release("", slot: slot, final: true)
            guard !out.isEmpty else { return [event] }
            let flush: JSON = ["type": "content_block_delta", "index": JSON(slot), "delta": ["type": "text_delta", "text": JSON(out)]]
            return [SSEEvent(event: "content_block_delta", data: flush.description, id: nil), event]
        default:
            return [event]
        }
    }

    // MARK: Responses

    private static func slot(_ json: JSON) -> Int { (json["output_index"]?.int ?? 0) * 4096 + (json["content_index"]?.int ?? 0) }

    private mutating func responsesEvent(_ event: SSEEvent, type: String, _ json: inout JSON) throws -> [SSEEvent] {
        var events: [SSEEvent] = []
        var changed = false
        switch type {
        case "response.output_text.delta":
            guard let text = json["delta"]?.string else { break }
            let slot = Self.slot(json)
            let out = try filter.release(text, slot: slot, final: false)
            released[slot, default: ""] += out
            if out != text {
                json["delta"] = JSON(out)
                changed = true
            }
        case "response.output_text.done":
            let slot = Self.slot(json)
            let out = try filter.release("", slot: slot, final: true)
            if !out.isEmpty {
                released[slot, default: ""] += out
                var flush = json
                flush["type"] = "response.output_text.delta"
                flush["delta"] = JSON(out)
                flush["text"] = nil
                flush["logprobs"] = []
                if let number = flush["sequence_number"]?.int { flush["sequence_number"] = JSON(number + added) }
                events.append(SSEEvent(event: "response.output_text.delta", data: flush.description, id: nil))
                added += 1
            }
            if json["text"]?.string != released[slot] ?? "" {
                json["text"] = JSON(released[slot] ?? "")
                changed = true
            }
        case "response.content_part.done":
            let slot = Self.slot(json)
            if json["part"]?["type"]?.string == "output_text", let text = released[slot], json["part"]?["text"]?.string != text {
                json["part"]?["text"] = JSON(text)
                changed = true
            }
        case "response.output_item.done":
            if let item = json["item"], let fixed = fixedItem(item, outputIndex: json["output_index"]?.int ?? 0) {
                json["item"] = fixed
                changed = true
            }
        case "response.completed", "response.incomplete", "response.failed":
            if let output = json["response"]?["output"] {
                for (index, item) in output.elements.enumerated() {
                    guard let fixed = fixedItem(item, outputIndex: index) else { continue }
                    json["response"]?["output"]?[index] = fixed
                    changed = true
                }
            }
        default:
            break
        }
        if added > 0, let number = json["sequence_number"]?.int {
            json["sequence_number"] = JSON(number + added)
            changed = true
        }
        events.append(changed ? SSEEvent(event: event.event, data: json.description, id: event.id) : event)
        return events
    }

    /// A message item with each output_text part's text as released.
    private func fixedItem(_ item: JSON, outputIndex: Int) -> JSON? {
        guard let content = item["content"] else { return nil }
        var result: JSON?
        for (index, part) in content.elements.enumerated() where part["type"]?.string == "output_text" {
            guard let text = released[outputIndex * 4096 + index], part["text"]?.string != text else { continue }
            if result == nil { result = item }
            result?["content"]?[index]?["text"] = JSON(text)
        }
        return result
    }
}
