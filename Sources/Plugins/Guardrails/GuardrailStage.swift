/// Where in a request's life a guardrail acted.
public enum GuardrailStage: String, Sendable {
    case request, response
}
