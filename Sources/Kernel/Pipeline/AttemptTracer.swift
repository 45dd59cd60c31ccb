import NIOHTTP1

/// Spans around upstream attempts. A tracing plugin sets one on the request context; the router
/// opens a span per attempt, sends its headers (W3C `traceparent`) upstream, and closes it when
/// the attempt's answer ends (for a stream: when the stream ends).
public protocol AttemptTracer: Sendable {
    func startAttempt(provider: String, upstreamModel: String, attempt: Int) -> AttemptSpan
}

/// One attempt's span: headers to send upstream, and how to end it.
public struct AttemptSpan: Sendable {
    public var headers: HTTPHeaders
    public var end: @Sendable (_ error: GatewayError?, _ usage: Usage?) -> Void

    public init(headers: HTTPHeaders, end: @escaping @Sendable (_ error: GatewayError?, _ usage: Usage?) -> Void) {
        self.headers = headers
        self.end = end
    }
}
