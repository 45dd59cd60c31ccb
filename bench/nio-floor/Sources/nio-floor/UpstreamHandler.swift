import NIOCore
import NIOHTTP1

/// One pooled upstream connection: sends a request and relays its response to the client's handler.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let pool: UpstreamPool
    private var context: ChannelHandlerContext?
    private var downstream: DownstreamHandler?
    private var downstreamKeepAlive = true
    private var reusable = true
    private var headSent = false

    init(pool: UpstreamPool) {
        self.pool = pool
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func send(_ head: HTTPRequestHead, body: ByteBuffer?, to downstream: DownstreamHandler, keepAlive: Bool) {
        guard let context else { return downstream.fail(status: .badGateway) }
        self.downstream = downstream
        downstreamKeepAlive = keepAlive
        headSent = false
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The client left before the response ended: drop the connection, as its response is unread.
    func abandon() {
        downstream = nil
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let downstream else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            reusable = head.isKeepAlive
            var headers = head.headers
            headers.remove(name: "connection")
            headers.remove(name: "keep-alive")
            headSent = true
            downstream.relay(.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers)))
        case .body(let part):
            downstream.relay(.body(.byteBuffer(part)))
        case .end:
            self.downstream = nil
            downstream.finish(keepAlive: downstreamKeepAlive)
            if reusable {
                pool.release(context.channel)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        downstream?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        downstream?.fail(status: .badGateway, headSent: headSent)
        downstream = nil
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
