import NIOCore
import NIOHTTP1

/// Writes a `GatewayResponse` to a connection, as bytes (`ResponseHead`, chunks).
///
/// A whole answer is written at once on the connection's event loop. A stream is written event by event,
/// each flushed at once; when the client reads slowly the socket's buffer fills, the writer waits,
/// stops pulling from the upstream, and the upstream transfer pauses. Nothing is buffered without bound.
///
/// An answer whose head HTTP cannot carry (a header with a CR or LF in its value, a name that is not
/// a token) is not sent: the client gets a 500 with `connection: close` instead, and the connection
/// closes after it.
struct ResponseWriter {
    let channel: any Channel
    let keepAlive: Bool
    let version: HTTPVersion
    /// The request's method: the answer to a HEAD has no body (nor, ever, the answer to a CONNECT).
    let method: HTTPMethod
    /// Called on the event loop as the answer's head is written.
    var headWritten: @Sendable () -> Void = {}

    /// How a stream's events follow its head.
    enum StreamFraming: Sendable {
        /// In chunks (HTTP/1.1), ended by the last chunk.
        case chunked
        /// As they are (HTTP/1.0), ended by closing the connection.
        case untilClose
        /// Not at all: the answer to a HEAD.
        case none
        /// Not at all: the head could not be sent, and a 500 was, instead.
        case unsent
    }

    /// A body up to this size is copied after its head, into the head's buffer: one write instead
    /// of two costs less than the copy.
    static let inlineBodyLimit = 4096

    /// Writes a whole answer; called on the connection's loop, it has written it when it returns.
    /// The future is the write of the answer's end: it fails if the answer did not reach the socket
    /// (or could not be sent, and the 500 went instead).
    func writeWhole(_ response: GatewayResponse, body: ByteBuffer) -> EventLoopFuture<Void> {
        let hasBody = response.status.mayHaveResponseBody && method != .CONNECT
        let sendsBody = hasBody && method != .HEAD && body.readableBytes > 0
        let inline = sendsBody && body.readableBytes <= Self.inlineBodyLimit
        guard let head = ResponseHead.bytes(status: response.status, headers: response.headers, version: version,
                                            framing: hasBody ? .length(body.readableBytes) : .none, close: !keepAlive,
                                            followedBy: inline ? body : nil, allocator: channel.allocator)
        else { return writeUnsendable() }
        let rest = sendsBody && !inline ? body : nil
        let channel = channel, headWritten = headWritten
        let promise = channel.eventLoop.makePromise(of: Void.self)
        onLoop {
            headWritten()
            if let rest {
                channel.write(head, promise: nil)
                channel.writeAndFlush(rest, promise: promise)
            } else {
                channel.writeAndFlush(head, promise: promise)
            }
        }
        return promise.futureResult
    }

    /// Sends a stream's status line and headers; its events follow with `writeEvents`, framed as
    /// this returns. A separate step so that the task writing the events, which lives as long as
    /// the stream, holds no head.
    func writeStreamHead(_ response: GatewayResponse) -> StreamFraming {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-type", value: "text/event-stream")
        headers.replaceOrAdd(name: "cache-control", value: "no-cache")
        headers.replaceOrAdd(name: "x-accel-buffering", value: "no")
        let framing: StreamFraming =
            method == .HEAD || method == .CONNECT || !response.status.mayHaveResponseBody ? .none
            : version.major == 1 && version.minor >= 1 ? .chunked : .untilClose
        let close = !keepAlive || framing == .untilClose
        guard let head = ResponseHead.bytes(status: response.status, headers: headers, version: version,
                                            framing: framing == .chunked ? .chunked : .none, close: close,
                                            allocator: channel.allocator)
        else {
            _ = writeUnsendable()
            return .unsent
        }
        let channel = channel, headWritten = headWritten
        onLoop {
            headWritten()
            channel.writeAndFlush(head, promise: nil)
        }
        return framing
    }

    /// Writes a stream's events after its head; the future tells (on the event loop) whether all
    /// of them were written and the connection can carry another request.
    func writeEvents(_ events: EventStream.Iterator, framing: StreamFraming) async -> EventLoopFuture<Bool> {
        switch framing {
        case .chunked, .untilClose: break
        case .none: return channel.eventLoop.makeSucceededFuture(true)
        case .unsent: return cutShort()
        }
        var events = events
        do {
            while let event = try await events.next() {
                // Each event is flushed at once; the writer waits only when the socket's buffer is
                // past its high-water mark (a slow reader), which is what pauses the upstream.
                if let backlog = write(event, chunked: framing == .chunked) { try await Self.drain(backlog) }
            }
        } catch {
            return cutShort()
        }
        return end(chunked: framing == .chunked)
    }

    /// Runs a write on the connection's loop: request tasks run there; from elsewhere, it hops.
    private func onLoop(_ write: @escaping @Sendable () -> Void) {
        if channel.eventLoop.inEventLoop { write() } else { channel.eventLoop.execute(write) }
    }

    /// Sends a 500 instead of an answer whose head HTTP cannot carry. The future fails once it is
    /// written, so that the connection closes.
    private func writeUnsendable() -> EventLoopFuture<Void> {
        let body = ByteBuffer(string: #"{"type":"error","error":{"type":"api_error","message":"The gateway made an answer whose headers HTTP cannot carry."}}"#)
        let bytes = ResponseHead.bytes(status: .internalServerError, headers: ["content-type": "application/json"], version: version,
                                       framing: .length(body.readableBytes), close: true, followedBy: body, allocator: channel.allocator)!
        let channel = channel, headWritten = headWritten
        let promise = channel.eventLoop.makePromise(of: Void.self)
        onLoop {
            headWritten()
            channel.writeAndFlush(bytes, promise: promise)
        }
        return promise.futureResult.flatMapThrowing { throw ChannelError.outputClosed }
    }

    /// Waits for a write. A function of its own: awaiting a future inline would make room for
    /// a continuation in `writeEvents`'s frame, there for as long as the stream waits upstream.
    @inline(never)
    private static func drain(_ backlog: EventLoopFuture<Void>) async throws { try await backlog.get() }

    /// The stream's end (the last chunk) is written; its future tells whether the connection can
    /// carry another request. A stream without chunks ends with its connection, after its last write.
    @inline(never)
    private func end(chunked: Bool) -> EventLoopFuture<Bool> {
        let channel = channel
        let last = chunked ? ByteBuffer(staticString: "0\r\n\r\n") : ByteBuffer()
        return channel.writeAndFlush(last).map { chunked }.recover { _ in
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

    /// Writes and flushes one event, in a chunk of its own when `chunked`; returns the write when
    /// the socket's buffer is full. Not inlined, so that its buffer stays out of `writeEvents`'s
    /// async frame, which lives as long as the stream.
    @inline(never)
    private func write(_ event: SSEEvent, chunked: Bool) -> EventLoopFuture<Void>? {
        // The chunk's size line goes in front of the event, in room left for the longest one.
        let sizeRoom = chunked ? 18 : 0
        var buffer = channel.allocator.buffer(capacity: sizeRoom + event.data.utf8.count + 18)
        buffer.moveWriterIndex(forwardBy: sizeRoom)
        buffer.moveReaderIndex(forwardBy: sizeRoom)
        event.write(to: &buffer)
        guard buffer.readableBytes > 0 else { return nil }  // an empty chunk would end the stream
        if chunked {
            let sizeLine = String(buffer.readableBytes, radix: 16) + "\r\n"
            buffer.moveReaderIndex(to: sizeRoom - sizeLine.utf8.count)
            buffer.setString(sizeLine, at: buffer.readerIndex)
            buffer.writeStaticString("\r\n")
        }
        let written = channel.writeAndFlush(buffer)
        return channel.isWritable ? nil : written
    }
}
