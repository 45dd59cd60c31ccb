import NIOCore
import NIOHTTP1

/// One client connection: reads a whole request, sends it upstream on a pooled connection, and
/// relays the response part by part (so a stream's chunks go out as they come in).
final class DownstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let pool: UpstreamPool
    private var context: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var upstream: UpstreamHandler?

    init(pool: UpstreamPool) {
        self.pool = pool
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.abandon()
        upstream = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            forward()
        }
    }

    private func forward() {
        guard var head else { return }
        let keepAlive = head.isKeepAlive
        head.headers.replaceOrAdd(name: "host", value: pool.host)
        head.headers.remove(name: "connection")
        let body = body
        self.head = nil
        self.body = nil  // a proxy keeps nothing of a request it has sent on
        pool.acquire().assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard self.context != nil else { return self.pool.release(channel) }  // the client left
                guard let upstream = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                    return self.fail(status: .badGateway)
                }
                self.upstream = upstream
                upstream.send(head, body: body, to: self, keepAlive: keepAlive)
            case .failure:
                self.fail(status: .badGateway)
            }
        }
    }

    func relay(_ part: HTTPServerResponsePart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// The upstream's response has ended.
    func finish(keepAlive: Bool) {
        upstream = nil
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if !keepAlive { context.close(promise: nil) }
    }

    /// The upstream failed: answer if nothing was sent yet, otherwise cut the response.
    func fail(status: HTTPResponseStatus, headSent: Bool = false) {
        upstream = nil
        guard let context else { return }
        if headSent {
            context.close(promise: nil)
            return
        }
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: ["content-length": "0", "connection": "close"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.close(promise: nil)
    }
}
