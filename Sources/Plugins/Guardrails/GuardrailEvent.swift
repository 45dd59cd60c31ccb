import Kernel

/// Where in a request's life a guardrail acted.
public enum GuardrailStage: String, Sendable {
    case request, response
}

/// A guardrail acted on a request: sent on `PluginSignals` for `metrics`
/// (`sluice_guardrail_actions_total`). `rule` is a detector, a category or a rule's kind —
/// never the text that matched.
public struct GuardrailTriggered: Sendable {
    public var guardrail: String
    public var rule: String
    public var action: String
    public var stage: GuardrailStage
    public var count: Int
}

extension GatewayError {
    /// A guardrail's refusal: 400 in the front door's shape, with what rule refused and never
    /// the text itself.
    static func guardrail(_ message: String, code: String) -> GatewayError {
        GatewayError(.badRequest, type: "invalid_request_error", message, code: code)
    }
}

/// A guardrail setting the schema cannot check, at `path` within the plugin's config (or a key's
/// `guardrails` entry).
struct GuardrailConfigError: Error {
    var path: String
    var message: String
}
