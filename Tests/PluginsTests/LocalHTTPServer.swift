import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny HTTP/1.1 server on 127.0.0.1 (a port of its own) for plugins that call out: a policy
/// service, an OTLP collector, a provider. It keeps every request it gets and answers each with
/// what `answer` returns.
final class LocalHTTPServer: Sendable {
    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
        var body: [UInt8]

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct Reply: Sendable {
        var status: HTTPResponseStatus = .ok
        var headers: HTTPHeaders = ["content-type": "application/json"]
        var body: String = "{}"
        /// A binary body, sent instead of `body` when set.
        var bytes: [UInt8]? = nil
        /// Waits this long before answering.
        var delay: Duration = .zero

        static func json(_ text: String, status: HTTPResponseStatus = .ok) -> Reply { Reply(status: status, body: text) }
    }

    typealias Answer = @Sendable (Request) async -> Reply

    private let channel: any Channel
    /// The connections it accepted: `shutdown` closes them too, as a server going away does. Left
    /// open, a client's kept-alive connection could carry a later test's request (to a server
    /// that reuses this one's port) to this server.
    private let accepted: NIOLockedValueBox<[any Channel]>
    private let received = NIOLockedValueBox<[Request]>([])

    /// The server's root, `http://127.0.0.1:PORT`.
    let url: String

    /// Every request so far, oldest first.
    var requests: [Request] { received.withLockedValue { $0 } }

    private init(channel: any Channel, accepted: NIOLockedValueBox<[any Channel]>) {
        self.channel = channel
        self.accepted = accepted
        url = "http://127.0.0.1:\(channel.localAddress?.port ?? 0)"
    }

    /// The fake servers' own event loop: a gateway under test runs plugins on the shared
    /// singleton's loops, and a plugin's long check there must not also stall the fake provider.
    private static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func start(_ answer: @escaping Answer) async throws -> LocalHTTPServer {
        let box = NIOLockedValueBox<LocalHTTPServer?>(nil)
        let accepted = NIOLockedValueBox<[any Channel]>([])
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0.append(channel) }
                return channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(answer: answer) { request in
                        box.withLockedValue { $0 }?.received.withLockedValue { $0.append(request) }
                    })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = LocalHTTPServer(channel: channel, accepted: accepted)
        box.withLockedValue { $0 = server }
        return server
    }

    /// Waits until at least `count` requests have come (for calls made off the request path).
    func waitForRequests(_ count: Int, timeout: Duration = .seconds(10)) async -> [Request] {
        let end = ContinuousClock.now + timeout
        while requests.count < count, ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(20)) }
        return requests
    }

    func shutdown() async {
        try? await channel.close()
        for connection in accepted.withLockedValue({ $0 }) { try? await connection.close() }
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let answer: Answer
        let record: @Sendable (Request) -> Void
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(answer: @escaping Answer, record: @escaping @Sendable (Request) -> Void) {
            self.answer = answer
            self.record = record
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let request = Request(method: head.method, uri: head.uri, headers: head.headers, body: body)
                record(request)
                let answer = answer, loop = context.eventLoop
                let bound = NIOLoopBound((self, context), eventLoop: loop)
                let keepAlive = head.isKeepAlive
                Task {
                    let reply = await answer(request)
                    if reply.delay > .zero { try? await Task.sleep(for: reply.delay) }
                    loop.execute {
                        let (handler, context) = bound.value
                        handler.write(reply, keepAlive: keepAlive, context: context)
                    }
                }
            }
        }

        func write(_ reply: Reply, keepAlive: Bool, context: ChannelHandlerContext) {
            var headers = reply.headers
            let bytes = reply.bytes ?? Array(reply.body.utf8)
            headers.replaceOrAdd(name: "content-length", value: String(bytes.count))
            if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes)))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
