import NIOCore
import NIOHTTP1

/// What the HTTP server asks of the gateway; lets the server stay ignorant of APIs and plugins.
public protocol HTTPResponder: Sendable {
    /// The largest request body accepted now (it may change with a reload).
    var maxBodyBytes: Int { get }
    /// Answers a fully received request. Never throws: errors are answers too.
    func respond(to head: HTTPRequestHead, body: ByteBuffer) async -> GatewayResponse
    /// The 413 answer for a body over `maxBodyBytes`, in the shape the path's API expects.
    func bodyTooLarge(_ head: HTTPRequestHead) -> GatewayResponse
    /// The 400 answer for bytes that are not an HTTP/1.1 request; `reason` is the parser's.
    func malformedRequest(_ reason: String) -> GatewayResponse
}
