import Kernel
import NIOCore

/// A stored successful answer: always its whole form (an OpenAI chat completion, an embeddings
/// list or an Anthropic message), and the events of the stream when it was streamed, so that a
/// streaming client gets the same stream back and a non-streaming one the whole answer.
struct CachedAnswer: Sendable {
    var whole: JSON
    /// The provider's own bytes of a whole answer, replayed as they came.
    var body: String?
    var events: [SSEEvent]?
    var usage: Usage?

    /// `{"whole": …, "events": [{"event", "data"}…], "usage": {…}}` — how stores keep it.
    func encoded() -> [UInt8] {
        var json: JSON = ["whole": whole]
        if let body { json["body"] = JSON(body) }
        if let events {
            json["events"] = JSON(array: events.map { event in
                var item: JSON = ["data": JSON(event.data)]
                if let name = event.event { item["event"] = JSON(name) }
                return item
            })
        }
        if let usage {
            json["usage"] = ["input": JSON(usage.inputTokens), "output": JSON(usage.outputTokens), "cached": JSON(usage.cachedInputTokens)]
        }
        return json.encoded()
    }

    init(whole: JSON, body: String? = nil, events: [SSEEvent]?, usage: Usage?) {
        self.whole = whole
        self.body = body
        self.events = events
        self.usage = usage
    }

    init?(decoding bytes: [UInt8]) {
        guard let json = try? JSON.parse(bytes), let whole = json["whole"], whole.isObject else { return nil }
        self.whole = whole
        body = json["body"]?.string
        events = json["events"].map { list in
            list.elements.map { SSEEvent(event: $0["event"]?.string, data: $0["data"]?.string ?? "") }
        }
        usage = json["usage"].flatMap { usage in
            usage["input"]?.tokenCount.map {
                Usage(inputTokens: $0, outputTokens: usage["output"]?.tokenCount ?? 0, cachedInputTokens: usage["cached"]?.tokenCount ?? 0)
            }
        }
    }

    /// The answer for a client: whole, or as a stream (recorded, or made from the whole answer).
    func response(streaming: Bool, dialect: APIDialect, includeUsage: Bool, allocator: ByteBufferAllocator) -> GatewayResponse {
        guard streaming else {
            guard let body else { return .json(whole, allocator: allocator) }
            return GatewayResponse(headers: ["content-type": "application/json"], body: .whole(ByteBuffer(string: body)))
        }
        let replay = events.map { fitting($0, includeUsage: includeUsage, dialect: dialect) }
            ?? StreamSynthesizer.events(for: whole, dialect: dialect, includeUsage: includeUsage)
        return GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream"], body: .events(EventStream(replay)))
    }

    /// A recorded OpenAI stream fitted to this client: its usage chunk only when the client asked
    /// for one (made from the stored usage when the recording has none).
    private func fitting(_ events: [SSEEvent], includeUsage: Bool, dialect: APIDialect) -> [SSEEvent] {
        guard dialect == .openAI else { return events }
        let isUsageChunk = { (event: SSEEvent) in event.openAIUsage?.isUsageOnly == true }
        guard includeUsage else { return events.filter { !isUsageChunk($0) } }
        guard !events.contains(where: isUsageChunk), let usage = whole["usage"], usage.isObject,
              let first = events.first?.json else { return events }
        var chunk: JSON = ["id": first["id"] ?? "", "object": "chat.completion.chunk", "created": first["created"] ?? 0,
                           "model": first["model"] ?? "", "choices": .array()]
        chunk["usage"] = usage
        var fitted = events.filter { !$0.isDone }
        fitted.append(SSEEvent(data: chunk.description))
        return fitted + [.done]
    }
}
