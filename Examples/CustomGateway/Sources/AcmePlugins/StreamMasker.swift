import Kernel

/// Masks e-mail addresses in a streamed answer, also when the model sends one in pieces
/// (`ali`, `ce@exa`, `mple.com`): the text after the last character that cannot belong to an
/// address is held back until a later event shows where that word ends. A client sees each
/// word one event later, and never an unmasked piece of an address.
///
/// Text lives in OpenAI chunks' `choices[].delta.content` and Anthropic `content_block_delta`
/// events' `delta.text`; each choice or content block is held separately and flushed when it
/// finishes, when the stream moves on (`[DONE]`, `message_delta`) or when it ends.
struct StreamMasker: EventTranslator {
    let replacement: String

    /// Text held back, by choice or content-block index, with the event it came in: a flush
    /// is that event again with the held text.
    private var held: [Int: (text: String, template: SSEEvent, chunk: JSON)] = [:]

    init(replacement: String) { self.replacement = replacement }

    mutating func translate(_ event: SSEEvent) -> [SSEEvent] {
        guard !event.isDone, var chunk = event.json else { return flushAll() + [event] }
        if let choices = chunk["choices"]?.elements {  // OpenAI
            var flushed: [SSEEvent] = []
            for (position, choice) in choices.enumerated() {
                let slot = choice["index"]?.int ?? position
                if let text = choice["delta"]?["content"]?.string {
                    var single = chunk
                    single["choices"] = [["index": JSON(slot), "delta": ["content": ""], "finish_reason": .null]]
                    let last = choice["finish_reason"]?.string != nil  // the choice ends here: nothing may stay behind
                    chunk["choices"]?[position]?["delta"]?["content"] = JSON(release(text, slot: slot, template: event, chunk: single, last: last))
                } else if choice["finish_reason"]?.string != nil {
                    flushed += flush(slot)
                }
            }
            return flushed + [SSEEvent(event: event.event, data: chunk.description, id: event.id)]
        }
        switch chunk["type"]?.string {  // Anthropic
        case "content_block_delta":
            guard let text = chunk["delta"]?["text"]?.string, let slot = chunk["index"]?.int else { return [event] }
            let released = release(text, slot: slot, template: event, chunk: chunk)
            chunk["delta"]?["text"] = JSON(released)
            return [SSEEvent(event: event.event, data: chunk.description, id: event.id)]
        case "content_block_stop":
            return flush(chunk["index"]?.int ?? 0) + [event]
        case "content_block_start", "ping":
            return [event]
        default:
            return flushAll() + [event]
        }
    }

    mutating func finish() -> [SSEEvent] { flushAll() }

    /// Adds `text` to what `slot` holds and returns the masked part that can go out now.
    private mutating func release(_ text: String, slot: Int, template: SSEEvent, chunk: JSON, last: Bool = false) -> String {
        let pending = (held[slot]?.text ?? "") + text
        var cut = pending.endIndex
        var run = 0
        while !last, cut > pending.startIndex, EmailAddress.mayBePart(pending[pending.index(before: cut)]) {
            cut = pending.index(before: cut)
            run += 1
        }
        if run > EmailAddress.maximumLength { cut = pending.endIndex }  // too long to be an address
        held[slot] = cut == pending.endIndex ? nil : (String(pending[cut...]), template, chunk)
        return EmailAddress.masked(in: String(pending[..<cut]), with: replacement)
    }

    /// The text `slot` holds, masked, as an event of its own (none when it holds nothing).
    private mutating func flush(_ slot: Int) -> [SSEEvent] {
        guard let (text, template, chunk) = held.removeValue(forKey: slot) else { return [] }
        var event = chunk
        let masked = JSON(EmailAddress.masked(in: text, with: replacement))
        if event["choices"] != nil { event["choices"]?[0]?["delta"]?["content"] = masked } else { event["delta"]?["text"] = masked }
        return [SSEEvent(event: template.event, data: event.description, id: template.id)]
    }

    private mutating func flushAll() -> [SSEEvent] {
        held.keys.sorted().flatMap { flush($0) }
    }
}
