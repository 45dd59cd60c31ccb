import NIOCore
import NIOHTTP1

/// What a client should see when a provider answered with an error status.
public enum UpstreamFailure {
    public static func error(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> GatewayError {
        let detail = message(in: body)
        switch status {
        case 400, 404, 409, 413, 422:
            // The request itself was refused: the client can fix it, so it sees the provider's words.
            let upstream = try? JSON.parse(body)
            let error = upstream?["error"]
            return GatewayError(HTTPResponseStatus(statusCode: status), type: error?["type"]?.string ?? "invalid_request_error",
                                detail ?? "the provider refused the request (\(status))",
                                param: error?["param"]?.string, code: error?["code"]?.string)
        case 401, 403:
            // The gateway's own credentials were refused: not something the client can fix.
            return GatewayError(.badGateway, type: "upstream_error", "the provider refused the gateway's credentials (\(status))",
                                code: "upstream_auth_failed")
        case 429:
            var extra: HTTPHeaders = [:]
            if let retryAfter = headers.first(name: "retry-after") { extra.add(name: "retry-after", value: retryAfter) }
            return GatewayError(.tooManyRequests, type: "rate_limit_error", detail ?? "the provider is rate limiting requests",
                                code: "upstream_rate_limited", headers: extra)
        case 503, 529:
            return GatewayError(.serviceUnavailable, type: "upstream_error", "the provider is overloaded (\(status))" + (detail.map { ": \($0)" } ?? ""),
                                code: "upstream_overloaded")
        case 504:
            return GatewayError(.gatewayTimeout, type: "timeout_error", "the provider timed out (\(status))", code: "upstream_timeout")
        default:
            return GatewayError(.badGateway, type: "upstream_error",
                                "the provider failed (\(status))" + (detail.map { ": \($0)" } ?? ""), code: "upstream_error")
        }
    }

    /// The provider's error message, from an OpenAI- or Anthropic-shaped body.
    static func message(in body: ByteBuffer) -> String? {
        guard let json = try? JSON.parse(body) else { return nil }
        return json["error"]?["message"]?.string ?? json["error"]?.string ?? json["message"]?.string
    }
}
