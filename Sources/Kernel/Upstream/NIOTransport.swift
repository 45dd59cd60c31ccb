import Atomics
import NIOCore
import NIOPosix

/// The upstream transport for `http://`: SwiftNIO's HTTP/1.1 client on the event loop the request
/// runs on, with a keep-alive pool per loop (docs/ARCHITECTURE.md, "Upstream transports").
///
/// Share-nothing: a request's task runs on its client connection's loop, so its provider
/// connection is taken from, used on and given back to that loop's pool with no lock and no
/// thread hop, and the answer's bytes are read on the thread that writes them to the client.
final class NIOTransport: Sendable {
    private let group: any EventLoopGroup
    /// One pool per loop of `group`, made up front so that finding one takes no lock.
    private let pools: [ObjectIdentifier: LoopConnectionPool]
    private let offLoopPool: LoopConnectionPool
    private let isRunning = ManagedAtomic(true)

    /// `idleTimeout`: how long a kept-alive provider connection may wait for its next request.
    init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, idleTimeout: TimeAmount = .seconds(60)) {
        self.group = group
        var pools: [ObjectIdentifier: LoopConnectionPool] = [:]
        for loop in group.makeIterator() { pools[ObjectIdentifier(loop)] = LoopConnectionPool(loop: loop, idleTimeout: idleTimeout) }
        self.pools = pools
        offLoopPool = pools[ObjectIdentifier(group.next())]!
    }

    func send(_ request: UpstreamRequest, to url: PlainHTTPURL) async throws -> UpstreamResponse {
        try await run(request, url) { .whole($0) }
    }

    func stream(_ request: UpstreamRequest, to url: PlainHTTPURL) async throws -> UpstreamStreamingResponse {
        try await run(request, url) { .streaming($0) }
    }

    /// Fails the transfers in flight with `.shutdown` and closes every connection; later ones fail
    /// at once.
    func shutdown() {
        guard isRunning.exchange(false, ordering: .relaxed) else { return }
        for pool in pools.values { pool.loop.execute { pool.shutDown() } }
    }

    private func run<Answer: Sendable>(_ request: UpstreamRequest, _ url: PlainHTTPURL,
                                       _ waiter: @escaping @Sendable (CheckedContinuation<Answer, any Error>) -> NIOExchange.Waiter) async throws -> Answer {
        guard isRunning.load(ordering: .relaxed) else { throw UpstreamError.shutdown }
        let pool = currentPool()
        let exchange = try NIOExchange(request, url: url, pool: pool)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let start: @Sendable () -> Void = { if exchange.begin(waiter(continuation)) { pool.run(exchange) } }
                if pool.loop.inEventLoop { start() } else { pool.loop.execute(start) }
            }
        } onCancel: {
            exchange.cancel()
        }
    }

    /// The pool of the loop this task runs on (a request's connection loop). A caller on no loop
    /// of the group (a test, a tool) always gets the same one, so its connections are reused.
    private func currentPool() -> LoopConnectionPool {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop, let pool = pools[ObjectIdentifier(loop)] { return pool }
        return offLoopPool
    }
}
