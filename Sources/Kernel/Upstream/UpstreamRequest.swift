import NIOCore
import NIOHTTP1

/// A request to a provider or another HTTP service.
public struct UpstreamRequest: Sendable {
    public var method: HTTPMethod
    public var url: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer?
    public var timeouts: UpstreamTimeouts
    /// The largest whole answer read; a longer one fails with `responseTooLarge` (a stream's
    /// events are bounded by its event parser instead).
    public var maxResponseBytes: Int
    /// A PEM bundle of the certificate authorities trusted for an https:// URL instead of the
    /// system store (a provider's `ca_file`); `nil` for the system store. Verification of the
    /// peer's certificate and name is always on.
    public var caFile: String?
    /// Which transport carries it (docs/ARCHITECTURE.md, "Upstream transports").
    public var transport: UpstreamTransport

    public init(method: HTTPMethod = .POST, url: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
                timeouts: UpstreamTimeouts = .init(), maxResponseBytes: Int = 64 << 20, caFile: String? = nil,
                transport: UpstreamTransport = .automatic) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeouts = timeouts
        self.maxResponseBytes = maxResponseBytes
        self.caFile = caFile
        self.transport = transport
    }
}

/// The two ways to reach an upstream (docs/ARCHITECTURE.md, "Upstream transports").
public enum UpstreamTransport: String, Sendable, CaseIterable {
    /// `http://` through the NIO client on the caller's event loop, `https://` through curl
    /// (and `http://` too when an `http_proxy` is set, which only curl honours).
    case automatic = "auto"
    /// SwiftNIO's HTTP/1.1 client on the caller's event loop, plain HTTP only.
    case nio
    /// libcurl's multi interface on its own thread: TLS, proxies, HTTP/2.
    case curl
}

/// Limits on one upstream transfer.
public struct UpstreamTimeouts: Sendable {
    /// Establishing the connection (TCP and TLS).
    public var connect: Duration
    /// From sending until the response headers arrive.
    public var firstByte: Duration?
    /// The whole transfer, body included; `nil` for none (long streams).
    public var total: Duration?

    public init(connect: Duration = .seconds(10), firstByte: Duration? = nil, total: Duration? = nil) {
        self.connect = connect
        self.firstByte = firstByte
        self.total = total
    }
}

/// A whole upstream response.
public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: ByteBuffer
}

/// An upstream response whose body arrives as it is read.
public struct UpstreamStreamingResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    /// Chunks as the provider sends them. Reading slowly pauses the transfer; dropping the
    /// sequence (or cancelling the reading task) aborts it.
    public var body: UpstreamBody

    /// Reads the rest of the body (for error answers, which are small), up to `limit` bytes.
    public func collect(upTo limit: Int = 1 << 20) async throws -> ByteBuffer {
        var result = ByteBuffer()
        for try await chunk in body {
            var chunk = chunk
            guard result.readableBytes + chunk.readableBytes <= limit else { break }
            result.writeBuffer(&chunk)
        }
        return result
    }
}

/// Why an upstream transfer failed.
public enum UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    case connectFailed(String)
    case timedOut(Phase)
    case cancelled
    case shutdown
    case failed(String)
    /// A whole answer longer than the request's `maxResponseBytes`.
    case responseTooLarge(limit: Int)
    /// A server-sent event longer than its parser's `maxEventBytes`.
    case eventTooLarge(limit: Int)

    public enum Phase: String, Sendable { case connect, firstByte = "first byte", total }

    public var description: String {
        switch self {
        case .connectFailed(let why): "could not connect: \(why)"
        case .timedOut(let phase): "timed out (\(phase.rawValue))"
        case .cancelled: "cancelled"
        case .shutdown: "the gateway is shutting down"
        case .failed(let why): why
        case .responseTooLarge(let limit): "the answer is larger than \(limit) bytes"
        case .eventTooLarge(let limit): "an event of the stream is larger than \(limit) bytes"
        }
    }
}
