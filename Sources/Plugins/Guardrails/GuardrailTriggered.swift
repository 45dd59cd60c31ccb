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
