import Foundation
import Kernel
import NIOCore
import NIOHTTP1

/// Bedrock's errors as a client should see them. Bedrock answers `{"message": …}` (some services
/// `{"Message": …}`) with the exception's name in `x-amzn-ErrorType`; mid-stream it sends an
/// exception message named in `:exception-type`.
enum BedrockFailure {
    /// An error answer (status other than 2xx).
    static func error(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> GatewayError {
        let type = errorType(headers.first(name: "x-amzn-errortype"))
        let message = (try? JSON.parse(body)).flatMap { $0["message"]?.string ?? $0["Message"]?.string }
        let normalized = message.map { ByteBuffer(string: JSON(object: [("message", JSON($0))]).description) } ?? body
        var error: GatewayError
        switch type {
        case "ThrottlingException", "ServiceQuotaExceededException", "ModelNotReadyException":
            // Quota and capacity: wait and retry (Bedrock says ServiceQuotaExceeded with a 400).
            error = UpstreamFailure.error(status: 429, headers: headers, body: normalized)
        case "ModelTimeoutException":
            error = UpstreamFailure.error(status: 504, headers: headers, body: normalized)
        default:
            error = UpstreamFailure.error(status: status, headers: headers, body: normalized)
        }
        if error.status.code < 500, error.status != .tooManyRequests, error.code == nil, let type, !type.isEmpty { error.code = type }
        return error
    }

    /// An exception message in a ConverseStream answer.
    static func streamException(type: String, payload: [UInt8]) -> GatewayError {
        let message = (try? JSON.parse(ByteBuffer(bytes: payload)))?["message"]?.string
        let detail = message.map { ": \($0)" } ?? ""
        switch type.lowercased() {
        case "throttlingexception", "servicequotaexceededexception":
            return GatewayError(.tooManyRequests, type: "rate_limit_error", message ?? "the provider is rate limiting requests",
                                code: "upstream_rate_limited")
        case "validationexception":
            return GatewayError.invalidRequest(message ?? "the provider refused the request", code: "ValidationException")
        case "serviceunavailableexception":
            return GatewayError(.serviceUnavailable, type: "upstream_error", "the provider is unavailable" + detail, code: "upstream_overloaded")
        default:
            // modelStreamErrorException, internalServerException, and anything new.
            return GatewayError(.badGateway, type: "upstream_error", "the provider failed mid-stream (\(type))" + detail, code: "upstream_error")
        }
    }

    /// `ValidationException:http://internal.amazon.com/coral/…` → `ValidationException`.
    static func errorType(_ header: String?) -> String? {
        guard let header else { return nil }
        return String(header.prefix { $0 != ":" }).trimmingCharacters(in: .whitespaces)
    }
}
