import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to the upstream, one pool per event loop, so that a request and its
/// upstream connection share a thread and nothing crosses threads. The dictionary is fixed before
/// the server starts, and each pool is touched only on its own loop.
final class UpstreamPools: @unchecked Sendable {
    private let pools: [ObjectIdentifier: UpstreamPool]

    init(group: MultiThreadedEventLoopGroup, address: SocketAddress, host: String) {
        var pools: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = UpstreamPool(loop: loop, address: address, host: host)
        }
        self.pools = pools
    }

    /// The pool of `loop`; call on that loop.
    func pool(for loop: any EventLoop) -> UpstreamPool {
        loop.preconditionInEventLoop()
        return pools[ObjectIdentifier(loop)]!
    }
}

/// The idle upstream connections of one event loop; used only on that loop.
final class UpstreamPool {
    let loop: any EventLoop
    let address: SocketAddress
    let host: String
    private var idle: [any Channel] = []

    init(loop: any EventLoop, address: SocketAddress, host: String) {
        self.loop = loop
        self.address = address
        self.host = host
    }

    /// An idle connection, or a new one.
    func acquire() -> EventLoopFuture<any Channel> {
        while let channel = idle.popLast() {
            if channel.isActive { return loop.makeSucceededFuture(channel) }
        }
        let pool = NIOLoopBound(self, eventLoop: loop)
        return ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(pool: pool.value))
                }
            }
            .connect(to: address)
    }

    /// Returns a connection whose response has ended and which the upstream keeps open.
    func release(_ channel: any Channel) {
        idle.append(channel)
    }
}
