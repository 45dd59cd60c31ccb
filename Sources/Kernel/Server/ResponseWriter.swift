import NIOCore
import NIOHTTP1

/// Writes a `GatewayResponse` to a connection.
///
/// A whole answer is written at once on the connection's event loop. A stream is written event by event,
/// each flushed at once; when the client reads slowly the socket's buffer fills, the writer waits,
/// stops pulling from the upstream, and the upstream transfer pauses. Nothing is buffered without bound.
struct ResponseWriter {
    let channel: any Channel
    let keepAlive: Bool
    let version: HTTPVersion
    /// Called on the event loop as the answer's head is written.
    var headWritten: @Sendable () -> Void = {}

    private func head(for response: GatewayResponse) -> HTTPResponseHead {
        var head = HTTPResponseHead(version: version, status: response.status, headers: response.headers)
        if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
        return head
    }

    /// Writes a whole answer; called on the connection's loop, it has written it when it returns.
    /// The future is the write of the answer's end: it fails if the answer did not reach the socket.
    func writeWhole(_ response: GatewayResponse, body: ByteBuffer) -> EventLoopFuture<Void> {
        var withLength = head(for: response)
        withLength.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        let head = withLength, channel = channel, headWritten = headWritten
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let writeParts: @Sendable () -> Void = {
            headWritten()
            channel.write(HTTPServerResponsePart.head(head), promise: nil)
            if body.readableBytes > 0 { channel.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil) }
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: promise)
        }
        // Request tasks run on their connection's loop; from elsewhere, the parts go in one hop.
        if channel.eventLoop.inEventLoop { writeParts() } else { channel.eventLoop.execute(writeParts) }
        return promise.futureResult
    }

    /// Sends a stream's status line and headers; its events follow with `writeEvents`. A separate
    /// step so that the task writing the events, which lives as long as the stream, holds no head.
    func writeStreamHead(_ response: GatewayResponse) {
        var head = head(for: response)
        head.headers.remove(name: "content-length")
        head.headers.replaceOrAdd(name: "content-type", value: "text/event-stream")
        head.headers.replaceOrAdd(name: "cache-control", value: "no-cache")
        head.headers.replaceOrAdd(name: "x-accel-buffering", value: "no")
        let channel = channel, headWritten = headWritten, stream = head
        let write: @Sendable () -> Void = {
            headWritten()
            channel.writeAndFlush(HTTPServerResponsePart.head(stream), promise: nil)
        }
        if channel.eventLoop.inEventLoop { write() } else { channel.eventLoop.execute(write) }
    }

    /// Writes a stream's events after its head; the future tells (on the event loop) whether all
    /// of them were written.
    func writeEvents(_ events: EventStream.Iterator) async -> EventLoopFuture<Bool> {
        var events = events
        do {
            while let event = try await events.next() {
                // Each event is flushed at once; the writer waits only when the socket's buffer is
                // past its high-water mark (a slow reader), which is what pauses the upstream.
                if let backlog = write(event) { try await Self.drain(backlog) }
            }
        } catch {
            return cutShort()
        }
        return end()
    }

    /// Waits for a write. A function of its own: awaiting a future inline would make room for
    /// a continuation in `writeEvents`'s frame, there for as long as the stream waits upstream.
    @inline(never)
    private static func drain(_ backlog: EventLoopFuture<Void>) async throws { try await backlog.get() }

    /// The stream's end is written; its future tells whether it was.
    @inline(never)
    private func end() -> EventLoopFuture<Bool> {
        let channel = channel
        return channel.writeAndFlush(HTTPServerResponsePart.end(nil)).map { true }.recover { _ in
            channel.close(promise: nil)
            return false
        }
    }

    /// The client left, or the stream failed after its status line was sent: the connection is
    /// closed, so that the truncation is visible to the client.
    @inline(never)
    private func cutShort() -> EventLoopFuture<Bool> {
        channel.close(promise: nil)
        return channel.eventLoop.makeSucceededFuture(false)
    }

    /// Writes and flushes one event; returns the write when the socket's buffer is full. Not
    /// inlined, so that its buffer stays out of `writeEvents`'s async frame, which lives as long
    /// as the stream.
    @inline(never)
    private func write(_ event: SSEEvent) -> EventLoopFuture<Void>? {
        var buffer = channel.allocator.buffer(capacity: event.data.utf8.count + 16)
        event.write(to: &buffer)
        let written = channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)))
        return channel.isWritable ? nil : written
    }
}
