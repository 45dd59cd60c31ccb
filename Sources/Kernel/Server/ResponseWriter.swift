import NIOCore
import NIOHTTP1

/// Writes a `GatewayResponse` to a connection. A stream is written event by event, each flushed
/// at once and awaited: a client that reads slowly holds the loop here, which stops pulling from
/// the upstream, whose transfer then pauses. Nothing is buffered without bound.
struct ResponseWriter {
    let channel: any Channel
    let keepAlive: Bool

    /// Returns whether the whole response was written (false when the stream failed or the client left).
    @discardableResult
    func write(_ response: GatewayResponse, version: HTTPVersion) async -> Bool {
        var head = HTTPResponseHead(version: version, status: response.status, headers: response.headers)
        if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
        switch response.body {
        case .whole(let body):
            head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
            channel.write(HTTPServerResponsePart.head(head), promise: nil)
            if body.readableBytes > 0 { channel.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil) }
            return (try? await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()) != nil
        case .events(let events):
            head.headers.remove(name: "content-length")
            head.headers.replaceOrAdd(name: "content-type", value: "text/event-stream")
            head.headers.replaceOrAdd(name: "cache-control", value: "no-cache")
            head.headers.replaceOrAdd(name: "x-accel-buffering", value: "no")
            do {
                try await channel.writeAndFlush(HTTPServerResponsePart.head(head)).get()
                var buffer = channel.allocator.buffer(capacity: 512)
                for try await event in events {
                    buffer.clear()
                    event.write(to: &buffer)
                    try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer))).get()
                }
                try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
                return true
            } catch {
                // The client left or the stream failed after it began: the status line is gone,
                // so the connection is closed (and the truncation is visible to the client).
                channel.close(promise: nil)
                return false
            }
        }
    }
}
