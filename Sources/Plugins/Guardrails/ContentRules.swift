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

/// `content-filter` on a streamed answer: each slot keeps back `window` bytes so that a denied
/// phrase split over chunks is seen whole before any of it goes out.
struct ContentStreamFilter: StreamTextFilter {
    let rules: ContentRules
    let window: Int
    let onViolation: @Sendable (String) -> Void
    private var held: [Int: [UInt8]] = [:]

    init(rules: ContentRules, window: Int, onViolation: @escaping @Sendable (String) -> Void) {
        self.rules = rules
        self.window = window
        self.onViolation = onViolation
    }

    mutating func release(_ text: String, slot: Int, final: Bool) throws -> String {
        var pending = held.removeValue(forKey: slot) ?? []
        pending.append(contentsOf: text.utf8)
        let whole = String(decoding: pending, as: UTF8.self)
        if let violation = rules.violation(in: whole, stage: .response) {
            onViolation(violation.rule)
            throw violation.error
        }
        var cut = final ? pending.count : max(0, pending.count - window)
        while cut > 0, cut < pending.count, pending[cut] & 0xC0 == 0x80 { cut -= 1 }
        if cut < pending.count { held[slot] = Array(pending[cut...]) }
        return String(decoding: pending[..<cut], as: UTF8.self)
    }

    mutating func finish() {}
}
