import NIOCore
import NIOHTTP1

/// An error answer, rendered in the front door's own shape (OpenAI or Anthropic) by the Kernel.
/// Plugins throw it to refuse a request; any other error becomes a 500 without details.
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponseStatus
    /// The OpenAI `error.type`: `invalid_request_error`, `authentication_error`, …
    public var type: String
    public var message: String
    /// The offending request field, as a JSON path (`messages[2].role`).
    public var param: String?
    public var code: String?
    /// Extra response headers, such as `retry-after`.
    public var headers: HTTPHeaders
    /// The provider whose answer caused this error, if any.
    public var provider: String?

    public init(_ status: HTTPResponseStatus, type: String, _ message: String, param: String? = nil, code: String? = nil,
                headers: HTTPHeaders = [:], provider: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers
        self.provider = provider
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> GatewayError {
        GatewayError(.badRequest, type: "invalid_request_error", message, param: param, code: code)
    }
    public static func authentication(_ message: String) -> GatewayError {
        GatewayError(.unauthorized, type: "authentication_error", message, code: "invalid_api_key")
    }
    public static func permission(_ message: String) -> GatewayError {
        GatewayError(.forbidden, type: "permission_error", message, code: "model_not_allowed")
    }
    public static func notFound(_ message: String, code: String? = nil) -> GatewayError {
        GatewayError(.notFound, type: "invalid_request_error", message, code: code)
    }
    public static func internalError(_ message: String = "the gateway failed to handle the request") -> GatewayError {
        GatewayError(.internalServerError, type: "server_error", message)
    }

    /// The body in the dialect of the front door.
    public func body(for dialect: APIDialect) -> JSON {
        switch dialect {
        case .openAI:
            let error = JSON(object: [
                ("message", JSON(message)), ("type", JSON(type)),
                ("param", param.map { JSON($0) } ?? .null), ("code", code.map { JSON($0) } ?? .null),
            ])
            return JSON(object: [("error", error)])
        case .anthropic:
            // Anthropic's errors have no param field; like Anthropic, name the field in the message.
            let text = param.map { "\($0): \(message)" } ?? message
            let error = JSON(object: [("type", JSON(anthropicType)), ("message", JSON(text))])
            return JSON(object: [("type", "error"), ("error", error)])
        case .mcp:
            var data: [(String, JSON)] = [("status", JSON(Int(status.code))), ("type", JSON(type))]
            if let code { data.append(("code", JSON(code))) }
            return JSONRPC.error(id: nil, code: JSONRPC.refused, message, data: JSON(object: data))
        }
    }

    /// Anthropic's error types for the same situations.
    var anthropicType: String {
        switch status.code {
        case 400: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 529, 503: "overloaded_error"
        default: status.code >= 500 ? "api_error" : "invalid_request_error"
        }
    }

    /// The whole error response for a front door.
    public func response(for dialect: APIDialect, allocator: ByteBufferAllocator = .init()) -> GatewayResponse {
        var response = GatewayResponse.json(body(for: dialect), status: status, allocator: allocator)
        response.headers.add(contentsOf: headers)
        response.provider = provider
        return response
    }

    /// A Responses stream's `error` event: the error's fields at the top level, numbered after
    /// the events before it.
    public func responsesStreamEvent(sequenceNumber: Int) -> SSEEvent {
        let data = JSON(object: [
            ("type", "error"), ("code", code.map { JSON($0) } ?? JSON(type)), ("message", JSON(message)),
            ("param", param.map { JSON($0) } ?? .null), ("sequence_number", JSON(sequenceNumber)),
        ])
        return SSEEvent(event: "error", data: data.description)
    }

    /// The same error as one stream event, for failures after a stream has started.
    public func streamEvent(for dialect: APIDialect) -> SSEEvent {
        let data = String(decoding: body(for: dialect).encoded(), as: UTF8.self)
        return SSEEvent(event: dialect == .anthropic ? "error" : dialect == .mcp ? "message" : nil, data: data)
    }
}
