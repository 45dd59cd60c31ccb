import Kernel

/// What `content-filter` checks, for one caller: the manifest's rules with a key's own changes.
struct ContentRules: Sendable {
    var deny: PhraseList
    var patterns: [LinearRegex]
    var maxPromptTokens: Int?
    var allowedTools: Set<String>?
    var blockedTools: Set<String>

    /// The first rule `text` breaks, as a refusal; nil when it breaks none.
    func violation(in text: String, stage: GuardrailStage) -> (rule: String, error: GatewayError)? {
        let subject = stage == .request ? "The request contains" : "The answer contained"
        let ending = stage == .request ? "." : " and was withheld."
        if deny.matches(text) {
            return ("deny", .guardrail("\(subject) a term this gateway does not accept (content-filter deny list)\(ending)", code: "content_filtered"))
        }
        for (index, pattern) in patterns.enumerated() where pattern.matches(text) {
            return ("pattern", .guardrail("\(subject) text this gateway does not accept (content-filter patterns[\(index)])\(ending)", code: "content_filtered"))
        }
        return nil
    }

    var checksText: Bool { !deny.isEmpty || !patterns.isEmpty }

    /// The names of the tools a request offers the model, in any front door's format.
    static func toolNames(_ body: JSON) -> [String] {
        (body["tools"]?.elements ?? []).compactMap { $0["function"]?["name"]?.string ?? $0["name"]?.string }
    }
}
