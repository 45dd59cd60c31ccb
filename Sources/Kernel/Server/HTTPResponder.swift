import NIOCore
import NIOHTTP1

/// What the HTTP server asks of the gateway; lets the server stay ignorant of APIs and plugins.
public protocol HTTPResponder: Sendable {
    /// The largest request body accepted now (it may change with a reload).
    var maxBodyBytes: Int { get }
    /// Looks at a request's head as it arrives, on the connection's event loop, before its body
    /// is read. A refused request is answered at once; its body is never read.
    func screen(_ head: HTTPRequestHead) -> RequestScreening
    /// Answers a request (fully received, or refused by `screen` with an empty body). Never
    /// throws: errors are answers too.
    func respond(to head: HTTPRequestHead, body: ByteBuffer, screening: RequestScreening) async -> GatewayResponse
    /// The 413 answer for a body over `maxBodyBytes`, in the shape the path's API expects.
    func bodyTooLarge(_ head: HTTPRequestHead) -> GatewayResponse
    /// The 400 answer for bytes that are not an HTTP/1.1 request; `reason` is the parser's.
    func malformedRequest(_ reason: String) -> GatewayResponse
    /// The 503 answer for a connection over `server.max_connections`.
    func tooManyConnections() -> GatewayResponse
}
