import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A provider on 127.0.0.1 that speaks raw HTTP/1.1 bytes, so that a test can make it misbehave
/// the way real servers do: close a kept-alive connection, never answer, answer too much.
/// Each request takes the next action from the script; with none left it answers 200 "ok".
final class ScriptedUpstream: Sendable {
    enum Action: Sendable {
        /// Writes these bytes (a whole response, or a part of one) and keeps the connection.
        case write(String)
        /// Closes the connection without a word.
        case close
        /// Reads the request and never answers.
        case silence
        /// Writes a chunked 200 of `count` chunks of `size` bytes each, as fast as the socket takes them.
        case chunks(count: Int, size: Int)
    }

    private let channel: any Channel
    private let state = NIOLockedValueBox(State())

    private struct State {
        var script: [Action] = []
        var connections = 0
        var requests: [String] = []
        var bytesWritten = 0
    }

    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }
    /// Connections accepted so far.
    var connections: Int { state.withLockedValue { $0.connections } }
    /// Every request's head and body as received, oldest first.
    var requests: [String] { state.withLockedValue { $0.requests } }
    /// Bytes of `.chunks` answers that the socket has taken so far.
    var bytesWritten: Int { state.withLockedValue { $0.bytesWritten } }

    static func ok(_ body: String = "ok", headers: String = "") -> Action {
        .write("HTTP/1.1 200 OK\r\ncontent-length: \(body.utf8.count)\r\n\(headers)\r\n\(body)")
    }

    private init(channel: any Channel) {
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    static func start(_ script: [Action] = []) async throws -> ScriptedUpstream {
        let box = NIOLockedValueBox<ScriptedUpstream?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Connection(server: { box.withLockedValue { $0 }! }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = ScriptedUpstream(channel: channel)
        server.state.withLockedValue { $0.script = script }
        box.withLockedValue { $0 = server }
        return server
    }

    func then(_ actions: Action...) {
        state.withLockedValue { $0.script += actions }
    }

    func shutdown() async { try? await channel.close() }

    private func accepted() { state.withLockedValue { $0.connections += 1 } }

    private func next(after request: String) -> Action {
        state.withLockedValue { state in
            state.requests.append(request)
            return state.script.isEmpty ? Self.ok() : state.script.removeFirst()
        }
    }

    private func wrote(_ bytes: Int) { state.withLockedValue { $0.bytesWritten += bytes } }

    private final class Connection: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let server: @Sendable () -> ScriptedUpstream
        var pending = ByteBuffer()

        init(server: @escaping @Sendable () -> ScriptedUpstream) { self.server = server }

        func channelActive(context: ChannelHandlerContext) {
            server().accepted()
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            pending.writeBuffer(&bytes)
            while let request = takeRequest() {
                perform(server().next(after: request), context: context)
            }
        }

        /// One whole request (head and content-length body) off the front of `pending`.
        private func takeRequest() -> String? {
            let text = String(buffer: pending)
            guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
            let head = text[..<headEnd.lowerBound].lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            let total = text.utf8.distance(from: text.startIndex, to: headEnd.upperBound) + length
            guard pending.readableBytes >= total else { return nil }
            return pending.readString(length: total)
        }

        private func perform(_ action: Action, context: ChannelHandlerContext) {
            switch action {
            case .write(let text):
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
            case .close:
                context.close(promise: nil)
            case .silence:
                break
            case .chunks(let count, let size):
                context.write(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")), promise: nil)
                let chunk = ByteBuffer(string: String(size, radix: 16) + "\r\n" + String(repeating: "x", count: size) + "\r\n")
                let server = server()
                for _ in 0..<count {
                    context.write(wrapOutboundOut(chunk)).whenSuccess { server.wrote(size) }
                }
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "0\r\n\r\n")), promise: nil)
            }
        }
    }
}
