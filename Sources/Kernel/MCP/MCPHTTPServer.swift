import Atomics
import Logging
import NIOCore
import NIOHTTP1

/// A server reached over MCP's Streamable HTTP transport, through the Kernel's `UpstreamClient`.
/// Each client session has its own upstream session, whose id travels sealed in the client's.
/// The server's requests (sampling, elicitation, roots) reach the client under the id
/// `{server}/{the server's id as JSON}`; the client's answer comes back in the same session (its
/// id names the upstream session), so nothing needs remembering and any replica can route it.
struct MCPHTTPServer: MCPServerConnection {
    let name: String
    let url: String
    let configuredHeaders: HTTPHeaders
    let timeout: Duration
    let client: UpstreamClient
    let logger: Logger
    /// What one answer may be at most (a whole JSON answer; each event of a stream likewise).
    static let maxAnswerBytes = 16 << 20

    init(name: String, settings: MCPServerSettings, client: UpstreamClient, logger: Logger) {
        self.name = name
        url = settings.url ?? ""
        var headers = HTTPHeaders()
        for (header, value) in settings.headers { headers.add(name: header, value: value) }
        configuredHeaders = headers
        timeout = .seconds(settings.timeout)
        self.client = client
        self.logger = logger
    }

    func start() async {}
    func shutdown() async {}

    private enum Answer {
        case accepted
        case reply(MCPReply, sessionID: String?)
    }

    private func headers(_ upstream: MCPSession.Upstream?, extra: HTTPHeaders, version: String?) -> HTTPHeaders {
        var headers: HTTPHeaders = ["content-type": "application/json", "accept": "application/json, text/event-stream"]
        for (header, value) in extra where !Self.ownHeaders.contains(header.lowercased()) { headers.add(name: header, value: value) }
        headers.add(contentsOf: configuredHeaders)
        if let id = upstream?.id { headers.replaceOrAdd(name: "mcp-session-id", value: id) }
        if let version = version ?? upstream?.version { headers.replaceOrAdd(name: "mcp-protocol-version", value: version) }
        return headers
    }

    /// Headers the gateway sets itself: what callers pass along (trace context) never replaces them.
    private static let ownHeaders: Set<String> = ["content-type", "accept", "mcp-session-id", "mcp-protocol-version", "content-length", "host"]

    private func post(_ message: JSON, upstream: MCPSession.Upstream?, extra: HTTPHeaders, version: String? = nil) async throws(MCPServerError) -> Answer {
        let request = UpstreamRequest(method: .POST, url: url, headers: headers(upstream, extra: extra, version: version),
                                      body: message.encoded(using: ByteBufferAllocator()),
                                      timeouts: UpstreamTimeouts(connect: min(.seconds(10), timeout), firstByte: timeout, total: timeout))
        let answer: UpstreamStreamingResponse
        do {
            answer = try await client.stream(request)
        } catch let error as UpstreamError {
            if case .timedOut = error { throw .timedOut }
            throw .unavailable(error.description)
        } catch {
            throw .unavailable("\(error)")
        }
        let sessionID = answer.headers.first(name: "mcp-session-id")
        switch answer.status {
        case 202:
            return .accepted
        case 200:
            let type = answer.headers.first(name: "content-type")?.lowercased() ?? ""
            if type.hasPrefix("text/event-stream") {
                var abandoned: (@Sendable (String) -> Void)?
                if case .request = MCPMessageKind(message), let id = message["id"] {
                    abandoned = { why in self.cancel(id, why, upstream: upstream) }
                }
                return .reply(.stream(Self.messages(of: answer.body, server: name, abandoned: abandoned)), sessionID: sessionID)
            }
            let body: ByteBuffer
            do { body = try await answer.collect(upTo: Self.maxAnswerBytes) } catch { throw .unavailable("\(error)") }
            guard let json = try? JSON.parse(body) else { throw .unavailable("the server's answer is not JSON") }
            return .reply(.message(json), sessionID: sessionID)
        case 404 where upstream?.id != nil:
            throw .sessionExpired
        default:
            throw .unavailable("the server answered HTTP \(answer.status)")
        }
    }

    /// The JSON-RPC messages of an SSE body, until it ends (or the request's total timeout ends
    /// it). The server's requests get ids the gateway routes back (`{server}/{id}`). `abandoned`
    /// is called when the stream ends without the answer (timed out, its reader gone): the server
    /// is told to stop. Once the answer came, the body is read to its end even if nobody wants
    /// the rest, so that its connection goes back to the pool.
    static func messages(of body: UpstreamBody, server: String,
                         abandoned: (@Sendable (String) -> Void)? = nil) -> AsyncThrowingStream<JSON, any Error> {
        let answered = ManagedAtomic(false)
        let timedOut = ManagedAtomic(false)
        return AsyncThrowingStream { continuation in
            // On the event loop of the request that reads the messages: no thread hop per message.
            let reader = Task(executorPreference: EventLoopTaskExecutor.current) {
                do {
                    for try await event in SSEEventSequence(body, maxEventBytes: maxAnswerBytes) where !event.data.isEmpty {
                        guard var message = try? JSON.parse(event.data) else { continue }
                        if case .request = MCPMessageKind(message), let id = message["id"] { message["id"] = JSON(Self.relayID(server: server, id)) }
                        if message.isJSONRPCResponse { answered.store(true, ordering: .relaxed) }
                        continuation.yield(message)
                    }
                    continuation.finish()
                } catch let error as UpstreamError {
                    guard case .timedOut = error else { return continuation.finish(throwing: MCPServerError.unavailable(error.description)) }
                    timedOut.store(true, ordering: .relaxed)
                    continuation.finish(throwing: MCPServerError.timedOut)
                } catch {
                    continuation.finish(throwing: Task.isCancelled ? CancellationError() : MCPServerError.unavailable("\(error)"))
                }
            }
            continuation.onTermination = { _ in
                guard !answered.load(ordering: .relaxed) else { return }
                reader.cancel()
                abandoned?(timedOut.load(ordering: .relaxed) ? "timed out at the gateway" : "the client went away")
            }
        }
    }

    /// The id a client sees for this server's request `id`.
    static func relayID(server: String, _ id: JSON) -> String { "\(server)/\(id.description)" }

    /// Tells the server the gateway stopped waiting for request `id` (MCP's cancellation), in a
    /// task of its own: the caller's task is being cancelled or has ended.
    private func cancel(_ id: JSON, _ why: String, upstream: MCPSession.Upstream?) {
        let notification = JSONRPC.notification("notifications/cancelled", params: JSON(object: [("requestId", id), ("reason", JSON(why))]))
        Task { await notify(notification, upstream: upstream, headers: [:], session: nil) }
    }

    func open(version: String, capabilities: JSON, headers: HTTPHeaders) async throws(MCPServerError) -> (result: JSON, upstream: MCPSession.Upstream?) {
        let initialize = JSONRPC.request(id: 0, method: "initialize", params: JSON(object: [
            ("protocolVersion", JSON(version)), ("capabilities", capabilities),
            ("clientInfo", JSON(object: [("name", "sluice"), ("version", JSON(MCPGateway.version))])),
        ]))
        guard case .reply(let reply, let sessionID) = try await post(initialize, upstream: nil, extra: headers) else {
            throw .unavailable("the server accepted initialize without answering it")
        }
        let response = try await reply.response()
        guard let result = response["result"], let agreed = result["protocolVersion"]?.string else {
            throw .unavailable("initialize failed: \(response["error"]?["message"]?.string ?? "no result")")
        }
        let upstream = MCPSession.Upstream(id: sessionID, version: agreed)
        await notify(JSONRPC.notification("notifications/initialized"), upstream: upstream, headers: headers)
        return (result, upstream)
    }

    func request(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String?) async throws(MCPServerError) -> MCPReply {
        let answer: Answer
        do throws(MCPServerError) {
            answer = try await post(message, upstream: upstream, extra: headers)
        } catch {
            // No answer in time, or the client left while waiting for one: the server may stop.
            if let id = message["id"] {
                if case .timedOut = error { cancel(id, "timed out at the gateway", upstream: upstream) }
                else if Task.isCancelled { cancel(id, "the client went away", upstream: upstream) }
            }
            throw error
        }
        guard case .reply(let reply, _) = answer else {
            throw .unavailable("the server accepted a request without answering it")
        }
        // An answer that came alone on a stream goes back whole, as JSON.
        guard case .stream(let messages) = reply else { return reply }
        return try await MCPReply.whole(unlessMore: messages)
    }

    func answer(_ response: JSON, token: String, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String) async -> Bool {
        // The token is the server's own id as JSON; the upstream session is the client's own, so
        // a client can only ever answer requests made in its session.
        guard let id = try? JSON.parse(token), id.string != nil || id.int != nil else { return false }
        var response = response
        response["id"] = id
        guard case .accepted? = try? await post(response, upstream: upstream, extra: headers) else { return false }
        return true
    }

    func notify(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String?) async {
        do { _ = try await post(message, upstream: upstream, extra: headers) } catch {
            logger.debug("mcp notification not delivered", metadata: ["mcp_server": .string(name), "error": .string(error.description)])
        }
    }

    func listen(upstream: MCPSession.Upstream?, headers extra: HTTPHeaders) async -> AsyncThrowingStream<JSON, any Error>? {
        var headers = headers(upstream, extra: extra, version: nil)
        headers.replaceOrAdd(name: "accept", value: "text/event-stream")
        headers.remove(name: "content-type")
        let request = UpstreamRequest(method: .GET, url: url, headers: headers,
                                      timeouts: UpstreamTimeouts(connect: min(.seconds(10), timeout), firstByte: timeout))
        guard let answer = try? await client.stream(request), answer.status == 200,
              answer.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") == true else { return nil }
        return Self.messages(of: answer.body, server: name)
    }

    func close(upstream: MCPSession.Upstream?, headers extra: HTTPHeaders) async {
        guard upstream?.id != nil else { return }
        var headers = headers(upstream, extra: extra, version: nil)
        headers.remove(name: "content-type")
        _ = try? await client.send(UpstreamRequest(method: .DELETE, url: url, headers: headers,
                                                   timeouts: UpstreamTimeouts(connect: min(.seconds(10), timeout), total: timeout)))
    }
}
