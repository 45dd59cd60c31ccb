import NIOHTTP1

/// One upstream MCP server as the gateway talks to it, over HTTP or stdio.
protocol MCPServerConnection: Sendable {
    var name: String { get }
    var timeout: Duration { get }
    /// Starts what the server needs (a stdio server's process); never throws: a server that
    /// cannot start is unavailable until it can.
    func start() async
    func shutdown() async
    /// Opens this server's side of a new client session: `initialize`, then `notifications/initialized`.
    /// The upstream session is `nil` for a server whose one session every client shares (stdio).
    func open(version: String, headers: HTTPHeaders) async throws(MCPServerError) -> (result: JSON, upstream: MCPSession.Upstream?)
    /// Sends a request; the reply is its answer, or a stream of messages ending with it.
    func request(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders) async throws(MCPServerError) -> MCPReply
    /// Sends a notification (or a response to the server); best effort.
    func notify(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders) async
    /// What the server sends outside any request (list changes, log messages); `nil` when it offers nothing.
    func listen(upstream: MCPSession.Upstream?, headers: HTTPHeaders) async -> AsyncThrowingStream<JSON, any Error>?
    /// Ends this server's side of a session.
    func close(upstream: MCPSession.Upstream?, headers: HTTPHeaders) async
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
