import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The SwiftNIO HTTP/1.1 server: listeners (bound by address or adopted from systemd), and the
/// per-connection pipeline. It knows nothing of APIs; it hands requests to an `HTTPResponder`.
public final class HTTPServer: Sendable {
    public struct Limits: Sendable {
        /// A keep-alive connection closes after this long without a request.
        public var idle: Duration
        /// A request must be read whole this long after its connection's accept (the first
        /// request) or its first byte.
        public var request: Duration
        /// Open connections at most; one more is answered 503 and closed.
        public var maxConnections: Int
        public init(idle: Duration, request: Duration, maxConnections: Int = 10_000) {
            self.idle = idle
            self.request = request
            self.maxConnections = maxConnections
        }
    }

    private let group: any EventLoopGroup
    private let responder: any HTTPResponder
    private let limits: Limits
    public let tracker = RequestTracker()
    private let listeners = NIOLockedValueBox<[any Channel]>([])
    private let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    public init(group: any EventLoopGroup, responder: any HTTPResponder, limits: Limits) {
        self.group = group
        self.responder = responder
        self.limits = limits
    }

    /// Binds `address` and starts accepting. Returns the bound address (useful with port 0).
    @discardableResult
    public func listen(on address: ListenAddress) async throws -> SocketAddress? {
        let channel = try await bootstrap().bind(host: address.host, port: address.port).get()
        listeners.withLockedValue { $0.append(channel) }
        return channel.localAddress
    }

    /// Serves on a listening socket passed in by systemd (socket activation).
    @discardableResult
    public func listen(onDescriptor descriptor: CInt) async throws -> SocketAddress? {
        let channel = try await bootstrap().withBoundSocket(descriptor).get()
        listeners.withLockedValue { $0.append(channel) }
        return channel.localAddress
    }

    public var boundAddresses: [SocketAddress] { listeners.withLockedValue { $0.compactMap(\.localAddress) } }

    /// Stops accepting and waits, up to `timeout`, for the requests in flight and for every
    /// connection to close itself: each does once its current request is answered, and a fresh
    /// one first gets a moment for its first request, which may already be on its way (closing
    /// it at once would reset a client that did nothing wrong). Then cancels the requests left,
    /// and returns how many.
    public func drain(timeout: Duration) async -> Int {
        let deadline = ContinuousClock.now + timeout
        await stopAccepting()
        // A drain happens once per process: polling is fine.
        while tracker.inFlight > 0 || !connections.withLockedValue(\.isEmpty), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return tracker.cancelAll()
    }

    /// Stops accepting and tells every connection to close once its current (or first) request
    /// is answered; requests in flight go on.
    private func stopAccepting() async {
        let channels = listeners.withLockedValue { state in
            defer { state.removeAll() }
            return state
        }
        // First stop taking connections, and let those taken finish their setup, which goes to
        // the connection's loop and back: NIO closes a connection whose listener closed in the
        // meantime, resetting a client whose request may already be on its way.
        for channel in channels { try? await channel.setOption(ChannelOptions.autoRead, value: false).get() }
        for loop in group.makeIterator() { try? await loop.submit {}.get() }
        for channel in channels { try? await channel.eventLoop.submit {}.get() }
        for channel in channels { try? await channel.close() }
        for connection in connections.withLockedValue({ Array($0.values) }) {
            connection.pipeline.fireUserInboundEventTriggered(DrainEvent())
        }
    }

    /// Closes every connection that is left.
    public func closeConnections() async {
        for connection in connections.withLockedValue({ Array($0.values) }) { try? await connection.close() }
    }

    private func bootstrap() -> ServerBootstrap {
        let responder = responder, tracker = tracker, connections = connections, maxConnections = limits.maxConnections
        let idle = TimeAmount(limits.idle), request = TimeAmount(limits.request)
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client that shuts its sending side after a request still gets the answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // A connection keeps the receive buffer its largest read grew to, and an open stream keeps
            // its connection: NIO's default cap (64 KiB) would leave a long conversation's worth of
            // buffer on every stream. Larger bodies arrive in more reads; a short request's head
            // and body fit the first 1 KiB.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 8 * 1024))
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                let admitted = connections.withLockedValue { open in
                    guard open.count < maxConnections else { return false }
                    open[id] = channel
                    return true
                }
                guard admitted else { return Self.refuseConnection(channel, answer: responder.tooManyConnections()) }
                channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    let handler = HTTPConnectionHandler(responder: responder, tracker: tracker, idleTimeout: idle, requestTimeout: request)
                    try channel.pipeline.syncOperations.addHTTPConnectionHandlers(handler)
                }
            }
    }

    /// A connection over the limit gets its 503 as soon as it is active, and is closed at once:
    /// it holds a file descriptor only as long as writing the answer takes.
    private static func refuseConnection(_ channel: any Channel, answer: GatewayResponse) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ConnectionRefusal(answer: answer))
        }
    }
}

/// Answers a connection the server will not serve, then closes it.
private final class ConnectionRefusal: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let answer: GatewayResponse

    init(answer: GatewayResponse) { self.answer = answer }

    func channelActive(context: ChannelHandlerContext) {
        guard case .whole(let body) = answer.body,
              let bytes = ResponseHead.bytes(status: answer.status, headers: answer.headers, version: .http1_1,
                                             framing: .length(body.readableBytes), close: true,
                                             followedBy: body, allocator: context.channel.allocator)
        else { return context.close(promise: nil) }
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in loopContext.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // whatever it asked, the answer is the same
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// A served connection's handlers: the request watch, NIO's HTTP/1.1 request decoder, and the
    /// connection's handler, which writes its answers as bytes and answers pipelined requests in
    /// order itself (so neither NIO's response encoder nor its pipelining handler is there).
    func addHTTPConnectionHandlers(_ handler: HTTPConnectionHandler) throws {
        try addHandler(handler.watch)
        try addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try addHandler(handler)
    }
}
