import NIOCore
import NIOHTTP1

/// One kept-alive HTTP/1.1 connection to a provider, carrying one exchange at a time; the last
/// handler of its channel's pipeline, after NIO's response decoder (`UpstreamResponseDecoder`).
/// It writes a request as its bytes: the head the exchange made (`UpstreamRequestHead`), then
/// the body.
///
/// Loop-confined like its pool. Back-pressure: while the exchange's reader wants no more, the
/// channel's reads are held (`read` is not passed on), so the kernel's socket buffer fills and
/// TCP slows the provider down.
final class UpstreamConnection: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let origin: PlainHTTPURL.Origin
    private let pool: LoopConnectionPool
    /// Told of each request sent, so that it knows which answer has no body.
    let responseDecoder = UpstreamResponseDecoder()
    private var context: ChannelHandlerContext?
    private var exchange: NIOExchange?
    private var heldRead = false
    /// Whether the answer being read lets the connection carry another request.
    private var keepAlive = true
    private var lastError: (any Error)?
    /// When the connection, idle in the pool, closes; the pool's timer checks it.
    private(set) var idleUntil: NIODeadline?

    init(origin: PlainHTTPURL.Origin, pool: LoopConnectionPool) {
        self.origin = origin
        self.pool = pool
    }

    var isUsable: Bool { context?.channel.isActive ?? false }

    // MARK: the pool's calls

    /// Sends the exchange's request; its answer comes through `channelRead`.
    func run(_ exchange: NIOExchange) {
        guard let context else { return exchange.fail(.failed("the provider connection closed")) }
        idleUntil = nil
        self.exchange = exchange
        exchange.connection = self

        responseDecoder.requestSent(exchange.method)
        context.write(wrapOutboundOut(.byteBuffer(exchange.requestHead)), promise: nil)
        // The caller's bytes go to the socket as they are: no copy.
        if let body = exchange.body, body.readableBytes > 0 { context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil) }
        context.flush()
        if heldRead {
            heldRead = false
            context.read()
        }
    }

    /// Waits in the pool until `until`, then the pool closes it.
    func park(until: NIODeadline) {
        idleUntil = until
    }

    /// The exchange failed or was given up: the connection is in an unknown state, so it closes.
    func abandon(_ exchange: NIOExchange) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        close()
    }

    func resumeReading() {
        guard heldRead, let context else { return }
        heldRead = false
        context.read()
    }

    func close() {
        context?.close(promise: nil)
    }

    // MARK: ChannelHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else {
            // Nothing was asked: a provider talking out of turn is not to be trusted with the next request.
            return context.close(promise: nil)
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            exchange.received(head)
        case .body(let chunk):
            exchange.received(chunk)
        case .end:
            self.exchange = nil
            exchange.ended()
            if keepAlive, exchange.isDone {
                pool.park(self)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if let exchange, !exchange.wantsMore {
            heldRead = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lastError = error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleUntil = nil
        pool.closed(self)
        if let exchange {
            self.exchange = nil
            exchange.connection = nil
            pool.connectionLost(exchange, error: lastError)
        }
        context.fireChannelInactive()
    }
}
