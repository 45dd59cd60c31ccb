/// Messages of an MCP stream as the server-sent events the transport sends (`event: message`).
/// `answered` sees the response (the JSON at hand, not the event's text parsed again).
struct MCPEventSequence: AsyncSequence, Sendable {
    typealias Element = SSEEvent
    let messages: AsyncThrowingStream<JSON, any Error>
    var answered: @Sendable (JSON) -> Void = { _ in }

    func makeAsyncIterator() -> Iterator { Iterator(base: messages.makeAsyncIterator(), answered: answered) }

    struct Iterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<JSON, any Error>.AsyncIterator
        let answered: @Sendable (JSON) -> Void

        mutating func next() async throws -> SSEEvent? {
            guard let message = try await base.next(isolation: #isolation) else { return nil }
            if message.isJSONRPCResponse { answered(message) }
            return SSEEvent(event: "message", data: message.description)
        }
    }
}
