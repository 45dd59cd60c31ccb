import NIOCore

/// The GET stream: what the session's servers send outside any request (list changes, log
/// messages, resource updates, their requests to the client), merged into one. It ends when the
/// gateway drains or its generation is replaced, so it holds neither; the client opens it again.
extension MCPGateway {
    func notifications(for session: MCPSession, scope: String?, request: GatewayRequest,
                       isDraining: @escaping @Sendable () -> Bool) async throws -> GatewayResponse {
        var sources: [(String, AsyncThrowingStream<JSON, any Error>)] = []
        for server in targets(scope) {
            if let stream = await server.listen(upstream: session.upstream[server.name], headers: [:]) { sources.append((server.name, stream)) }
        }
        guard !sources.isEmpty else {
            record(request) { $0.outcome = "unknown" }
            return GatewayResponse(status: .methodNotAllowed, headers: ["allow": "POST, DELETE"], body: .whole(ByteBuffer()))
        }
        record(request) { $0.outcome = "ok" }
        let isClosing = isClosing, logger = logger
        let merged = AsyncThrowingStream<JSON, any Error> { continuation in
            var tasks: [Task<Void, Never>] = []
            for (name, source) in sources {
                tasks.append(Task {
                    do {
                        for try await message in source {
                            switch MCPMessageKind(message) {
                            case .notification(let method) where method != "notifications/progress":
                                continuation.yield(message)
                            case .request:
                                // A server's request outside any call (its id already `{server}/…`):
                                // this session's client answers it.
                                continuation.yield(message)
                            default:
                                // Progress and answers belong to a request's own stream.
                                logger.debug("mcp server message dropped from the notification stream", metadata: ["mcp_server": .string(name)])
                            }
                        }
                    } catch {}
                })
            }
            tasks.append(Task {
                while !Task.isCancelled, !isClosing.load(ordering: .relaxed), !isDraining() {
                    try? await Task.sleep(for: .milliseconds(250))
                }
                continuation.finish()
            })
            let all = tasks
            continuation.onTermination = { _ in for task in all { task.cancel() } }
        }
        return GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream", "cache-control": "no-cache"],
                               body: .events(EventStream(MCPEventSequence(messages: merged))))
    }
}
