import Kernel

extension GatewayError {
    /// A guardrail's refusal: 400 in the front door's shape, with what rule refused and never
    /// the text itself.
    static func guardrail(_ message: String, code: String) -> GatewayError {
        GatewayError(.badRequest, type: "invalid_request_error", message, code: code)
    }
}
