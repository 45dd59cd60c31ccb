import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The NIO transport's keep-alive connections of one event loop, by origin. Loop-confined: it is
/// used only by requests running on its loop, so it takes no lock.
final class LoopConnectionPool: @unchecked Sendable {
    let loop: any EventLoop
    private var idle: [PlainHTTPURL.Origin: [UpstreamConnection]] = [:]
    /// Every open connection, idle or busy, for the shutdown.
    private var open: [ObjectIdentifier: UpstreamConnection] = [:]
    /// The exchanges under way that have a deadline.
    private var timed: [ObjectIdentifier: NIOExchange] = [:]
    /// The loop's one timer for every exchange's deadlines and every idle connection's end.
    private lazy var deadlineCheck = DeadlineCheck(loop: loop) { [weak self] now in self?.checkDeadlines(now: now) }
    private var isShutDown = false

    /// Idle connections kept per origin; more are closed when their answer ends.
    static let maxIdlePerOrigin = 128
    /// How long an idle connection is kept (60 s unless a test says otherwise). Servers close
    /// theirs too (often after 5 s); a request that meets a connection closed under it is sent
    /// again on a new one.
    let idleTimeout: TimeAmount

    init(loop: any EventLoop, idleTimeout: TimeAmount = .seconds(60)) {
        self.loop = loop
        self.idleTimeout = idleTimeout
    }

    /// Sends the exchange on an idle connection to its origin, or on a new one.
    func run(_ exchange: NIOExchange) {
        loop.preconditionInEventLoop()
        guard !isShutDown else { return exchange.fail(.shutdown) }
        while let connection = idle[exchange.url.origin]?.popLast() {
            if connection.isUsable {
                exchange.isOnKeptConnection = true
                return connection.run(exchange)
            }
        }
        connect(for: exchange)
    }

    private func connect(for exchange: NIOExchange) {
        exchange.isOnKeptConnection = false
        let origin = exchange.url.origin
        let connection = UpstreamConnection(origin: origin, pool: self)
        ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(exchange.timeouts.connect))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            // Events are small and a stream lives long: start small, grow for large answers. The
            // channel keeps its read buffer for the next read (NIO reuses one at least as large as
            // it wants, and never shrinks it), so each open stream holds one buffer of the initial
            // size at least: an answer's head and an event or two fit in 512 bytes.
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 512, maximum: 65536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(connection.responseDecoder))
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(host: origin.host, port: origin.port)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    open[ObjectIdentifier(connection)] = connection
                    if isShutDown {
                        channel.close(promise: nil)
                        exchange.fail(.shutdown)
                    } else if exchange.isDone {
                        park(connection)  // the caller gave up while it connected: keep it for the next
                    } else {
                        connection.run(exchange)
                    }
                case .failure(let error):
                    exchange.fail(Self.connectError(error, origin: origin))
                }
            }
    }

    /// Takes back a connection whose answer ended cleanly.
    func park(_ connection: UpstreamConnection) {
        guard !isShutDown, connection.isUsable, Self.append(connection, to: &idle[connection.origin, default: []]) else {
            return connection.close()
        }
        let until = loop.now + idleTimeout
        connection.park(until: until)
        deadlineCheck.ensure(by: until)
    }

    /// Appends in place (one look-up, and the list is not copied to grow), unless the list is full.
    private static func append(_ connection: UpstreamConnection, to connections: inout [UpstreamConnection]) -> Bool {
        guard connections.count < maxIdlePerOrigin else { return false }
        connections.append(connection)
        return true
    }

    // MARK: deadlines

    /// Keeps the exchange's deadlines until `untrack`.
    func track(_ exchange: NIOExchange) {
        guard let deadline = exchange.nextDeadline else { return }
        timed[ObjectIdentifier(exchange)] = exchange
        deadlineCheck.ensure(by: deadline)
    }

    func untrack(_ exchange: NIOExchange) {
        timed[ObjectIdentifier(exchange)] = nil
    }

    /// Fails the exchanges whose deadline has passed and closes the connections idle too long;
    /// returns the next deadline of those left.
    private func checkDeadlines(now: NIODeadline) -> NIODeadline? {
        for exchange in timed.values { exchange.checkDeadlines(now: now) }  // failing untracks them
        for connection in idle.values.joined() where connection.idleUntil.map({ $0 <= now }) == true {
            connection.close()  // `closed(_:)` takes it out of `idle`
        }
        return (timed.values.compactMap(\.nextDeadline) + idle.values.joined().compactMap(\.idleUntil)).min()
    }

    /// A connection closed, idle or not.
    func closed(_ connection: UpstreamConnection) {
        open[ObjectIdentifier(connection)] = nil
        idle[connection.origin]?.removeAll { $0 === connection }
    }

    /// A connection closed under an exchange before its answer was complete.
    func connectionLost(_ exchange: NIOExchange, error: (any Error)?) {
        guard !isShutDown else { return exchange.fail(.shutdown) }
        // Nothing of the answer came on a kept-alive connection: the provider most likely closed
        // it as the request went out, and never saw the request. Send it once more on a new
        // connection, as curl does.
        if exchange.isOnKeptConnection, !exchange.hasAnswer, !exchange.wasResent, !exchange.isDone {
            exchange.wasResent = true
            return connect(for: exchange)
        }
        let detail = error.map { ": \(Self.describe($0))" } ?? ""
        exchange.fail(.failed("the provider closed the connection before the answer was complete\(detail)"))
    }

    /// Fails the exchanges in flight with `.shutdown` and closes every connection.
    func shutDown() {
        isShutDown = true
        idle.removeAll()
        deadlineCheck.cancel()
        for connection in open.values { connection.close() }
    }

    // MARK: errors

    static func connectError(_ error: any Error, origin: PlainHTTPURL.Origin) -> UpstreamError {
        if case ChannelError.connectTimeout = error { return .timedOut(.connect) }
        return .connectFailed("\(origin.host) port \(origin.port): \(describe(error))")
    }

    /// A short reason: the errno's text rather than NIO's whole error value.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dns = error.dnsAAAAError ?? error.dnsAError { return "could not resolve the host (\(dns))" }
            return "no address to connect to"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode))
        default:
            return String(describing: error)
        }
    }
}
