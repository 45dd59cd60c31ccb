import Kernel
import NIOCore
import NIOHTTP1

/// What a client sees when Google answered with an error, `{"error": {"code", "message",
/// "status", "details"}}`: `UpstreamFailure`'s mapping, after two Google habits are undone. A
/// wrong API key comes as a 400 (reason `API_KEY_INVALID`), which is the gateway's credential
/// failing, not the client's request; and a 429 says when to come back in a `RetryInfo` detail
/// (`"retryDelay": "30s"`), not a `retry-after` header.
enum GeminiFailure {
    static func error(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> GatewayError {
        let error = (try? JSON.parse(body))?["error"]
        let details = error?["details"]?.elements ?? []
        var status = status
        if status == 400, details.contains(where: { $0["reason"]?.string == "API_KEY_INVALID" }) { status = 401 }
        var headers = headers
        if status == 429, !headers.contains(name: "retry-after"),
           let delay = details.lazy.compactMap({ $0["retryDelay"]?.string }).first, let seconds = retryAfter(delay) {
            headers.add(name: "retry-after", value: String(seconds))
        }
        return UpstreamFailure.error(status: status, headers: headers, body: body)
    }

    /// Whole seconds, rounded up, of a protobuf Duration such as "30s" or "1.5s".
    static func retryAfter(_ duration: String) -> Int? {
        guard duration.hasSuffix("s"), let seconds = Double(duration.dropLast()), seconds.isFinite, seconds >= 0 else { return nil }
        return Int(min(seconds, 86_400).rounded(.up))
    }
}
