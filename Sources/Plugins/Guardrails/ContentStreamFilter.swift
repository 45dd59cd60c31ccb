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
