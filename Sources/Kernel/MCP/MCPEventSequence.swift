/// Messages of an MCP stream as the server-sent events the transport sends (`event: message`).
struct MCPEventSequence: AsyncSequence, Sendable {
    typealias Element = SSEEvent
    let messages: AsyncThrowingStream<JSON, any Error>

    func makeAsyncIterator() -> Iterator { Iterator(base: messages.makeAsyncIterator()) }

    struct Iterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<JSON, any Error>.AsyncIterator
        mutating func next() async throws -> SSEEvent? {
            try await base.next().map { SSEEvent(event: "message", data: $0.description) }
        }
    }
}
