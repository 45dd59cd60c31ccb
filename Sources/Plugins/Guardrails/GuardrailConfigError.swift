/// A guardrail setting the schema cannot check, at `path` within the plugin's config (or a key's
/// `guardrails` entry).
struct GuardrailConfigError: Error {
    var path: String
    var message: String
}
