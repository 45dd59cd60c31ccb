import NIOHTTP1

/// One upstream MCP server as the gateway talks to it, over HTTP or stdio.
protocol MCPServerConnection: Sendable {
    var name: String { get }
    var timeout: Duration { get }
    /// Starts what the server needs (a stdio server's process); never throws: a server that
    /// cannot start is unavailable until it can.
    func start() async
    func shutdown() async
    /// Opens this server's side of a new client session: `initialize` (declaring `capabilities`,
    /// what the client can answer of the server's requests), then `notifications/initialized`.
    /// The upstream session is `nil` for a server whose one session every client shares (stdio).
    func open(version: String, capabilities: JSON, headers: HTTPHeaders) async throws(MCPServerError) -> (result: JSON, upstream: MCPSession.Upstream?)
    /// Sends a request; the reply is its answer, or a stream of messages ending with it. `session`
    /// (the client's session id) is set when the reply goes to a client that can answer the
    /// server's requests on it and may cancel the call; such requests then carry ids
    /// `{server}/{token}` (see `answer`).
    func request(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String?) async throws(MCPServerError) -> MCPReply
    /// Sends a notification; best effort. `session` names the client that sent it (a
    /// cancellation names one of that client's requests).
    func notify(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String?) async
    /// Gives a client's answer to a request this server made back to the server, under the
    /// server's own id; `token` is what followed `{server}/` in the id the client saw. `false`
    /// when no such request of this client's session is waiting.
    func answer(_ response: JSON, token: String, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String) async -> Bool
    /// What the server sends outside any request (list changes, log messages, its requests);
    /// `nil` when it offers nothing.
    func listen(upstream: MCPSession.Upstream?, headers: HTTPHeaders) async -> AsyncThrowingStream<JSON, any Error>?
    /// Ends this server's side of a session.
    func close(upstream: MCPSession.Upstream?, headers: HTTPHeaders) async
}

extension MCPServerConnection {
    /// A request whose reply no client answers into (lists, the gateway's own requests).
    func request(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders) async throws(MCPServerError) -> MCPReply {
        try await request(message, upstream: upstream, headers: headers, session: nil)
    }

    func notify(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders) async {
        await notify(message, upstream: upstream, headers: headers, session: nil)
    }
}

/// The capabilities of a client that sluice relays servers' requests for: what the client
/// declared of sampling, elicitation and roots (the server's requests sluice can route back).
enum MCPClientCapabilities {
    static let relayed = ["sampling", "elicitation", "roots"]

    static func relayable(_ capabilities: JSON?) -> JSON {
        var kept: [(String, JSON)] = []
        for name in relayed { if let value = capabilities?[name], value.isObject { kept.append((name, value)) } }
        return JSON(object: kept)
    }
}

/// A server's answer to one request.
enum MCPReply: Sendable {
    case message(JSON)
    /// Notifications (progress, logs) and then the response, as the server sends them.
    case stream(AsyncThrowingStream<JSON, any Error>)

    /// The response alone, whatever came before it.
    func response() async throws(MCPServerError) -> JSON {
        switch self {
        case .message(let message): return message
        case .stream(let messages):
            do {
                for try await message in messages where message.isJSONRPCResponse { return message }
            } catch let error as MCPServerError {
                throw error
            } catch {
                throw .unavailable("\(error)")
            }
            throw .unavailable("the server's stream ended without an answer")
        }
    }
}

extension MCPReply {
    /// The answer alone when it is the first message of `messages`; otherwise a stream of
    /// everything, the first message included (a relayed request came before the answer).
    static func whole(unlessMore messages: AsyncThrowingStream<JSON, any Error>) async throws(MCPServerError) -> MCPReply {
        let rest = Remaining(messages.makeAsyncIterator())
        let first: JSON?
        do { first = try await rest.iterator.next() } catch let error as MCPServerError { throw error } catch { throw .unavailable("\(error)") }
        guard let first else { throw .unavailable("the server's stream ended without an answer") }
        if first.isJSONRPCResponse { return .message(first) }
        return .stream(AsyncThrowingStream { continuation in
            continuation.yield(first)
            let task = Task(executorPreference: EventLoopTaskExecutor.current) {
                do {
                    while let next = try await rest.iterator.next() { continuation.yield(next) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        })
    }

    /// The iterator handed from the task that read the first message to the one that reads the
    /// rest: used by one task at a time, never at once, which the compiler cannot see.
    private final class Remaining: @unchecked Sendable {
        var iterator: AsyncThrowingStream<JSON, any Error>.AsyncIterator
        init(_ iterator: AsyncThrowingStream<JSON, any Error>.AsyncIterator) { self.iterator = iterator }
    }
}

/// Why a server could not answer.
enum MCPServerError: Error, Sendable, CustomStringConvertible {
    case unavailable(String)
    case timedOut
    /// The server no longer knows the upstream session (it restarted): the client must start over.
    case sessionExpired

    var description: String {
        switch self {
        case .unavailable(let why): why
        case .timedOut: "no answer in time"
        case .sessionExpired: "the server ended the session"
        }
    }
}
