import Foundation

/// The Kernel's HTTP client, for providers and every other upstream (docs/ARCHITECTURE.md,
/// "Upstream transports"): `http://` through SwiftNIO on the caller's event loop, `https://`
/// through libcurl on its own thread, or either as the request asks.
///
/// Callers never block. Cancelling the calling task aborts the transfer.
public final class UpstreamClient: Sendable {
    private let nio: NIOTransport
    private let curl: CurlTransport
    /// Set when the environment names an HTTP proxy, which only curl honours: `auto` then sends
    /// `http://` through curl too.
    private let plainHTTPNeedsCurl: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        nio = NIOTransport()
        curl = CurlTransport()
        // curl reads only the lower-case `http_proxy` (the upper-case one is a CGI hazard).
        plainHTTPNeedsCurl = !(environment["http_proxy"] ?? "").isEmpty
    }

    /// Sends a request and returns the whole response.
    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        if let url = plainHTTPURL(for: request) { return try await nio.send(request, to: url) }
        try UpstreamRequestHead.check(request.headers)
        return try await curl.send(request)
    }

    /// Sends a request and returns once the response headers are in; the body follows as read.
    public func stream(_ request: UpstreamRequest) async throws -> UpstreamStreamingResponse {
        if let url = plainHTTPURL(for: request) { return try await nio.stream(request, to: url) }
        try UpstreamRequestHead.check(request.headers)
        return try await curl.stream(request)
    }

    /// Fails every transfer in flight with `UpstreamError.shutdown` and stops curl's thread
    /// (returning once it has ended). Transfers sent after it fail with `.shutdown` at once.
    public func shutdown() {
        nio.shutdown()
        curl.shutdown()
    }

    /// Whether curl's thread is running (for tests).
    public var hasThread: Bool { curl.hasThread }

    /// The URL taken apart when the NIO transport carries this request; nil for curl.
    private func plainHTTPURL(for request: UpstreamRequest) -> PlainHTTPURL? {
        switch request.transport {
        case .curl: nil
        case .nio: PlainHTTPURL(request.url)
        case .automatic: plainHTTPNeedsCurl ? nil : PlainHTTPURL(request.url)
        }
    }
}
