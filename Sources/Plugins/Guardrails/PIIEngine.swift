import Kernel

/// Finds and rewrites personal data in one request's texts, by its policy, with the request's
/// placeholders: the same engine serves the request's texts, a whole answer and each slot of a
/// stream (`PIIStreamFilter`).
struct PIIEngine: Sendable {
    let policy: PIIPolicy
    let state: PIIRequestState

    func matches(_ bytes: [UInt8], stage: GuardrailStage) -> [PIIMatch] {
        var found = PIIScan.matches(in: bytes, detectors: policy.detectors)
        if stage == .response, policy.restores, bytes.contains(91) {
            var placeholders: [PIIMatch] = []
            PlaceholderScanner.scan(bytes, into: &placeholders)
            if !placeholders.isEmpty {
                found = (found + placeholders).sorted { $0.start < $1.start }
                var kept: [PIIMatch] = []
                for match in found where kept.last.map({ match.start >= $0.end }) ?? true { kept.append(match) }
                found = kept
            }
        }
        return found
    }

    /// The whole text rewritten, or nil when nothing in it changes.
    func process(_ text: String, stage: GuardrailStage) throws -> String? {
        let bytes = Array(text.utf8)
        let found = matches(bytes, stage: stage)
        guard !found.isEmpty else { return nil }
        let (out, changed) = try render(bytes[...], matches: found, stage: stage)
        return changed ? out : nil
    }

    /// `bytes` with each of `matches` (all within it) acted on.
    func render(_ bytes: ArraySlice<UInt8>, matches: [PIIMatch], stage: GuardrailStage) throws -> (String, changed: Bool) {
        guard !matches.isEmpty else { return (String(decoding: bytes, as: UTF8.self), false) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var position = bytes.startIndex
        var changed = false
        for match in matches {
            out.append(contentsOf: bytes[position..<match.start])
            let value = String(decoding: bytes[match.start..<match.end], as: UTF8.self)
            position = match.end
            if match.restores {
                if let original = state.original(of: value) {
                    out.append(contentsOf: original.utf8)
                    changed = true
                } else {
                    out.append(contentsOf: value.utf8)
                }
                continue
            }
            guard let action = policy.actions[match.detector] else {
                out.append(contentsOf: value.utf8)
                continue
            }
            state.count(PIIRequestState.Tally(stage: stage, detector: match.detector, action: action))
            switch action {
            case .block:
                throw stage == .request
                    ? GatewayError.guardrail("The request contains \(match.detector.noun) (pii detector `\(match.detector.rawValue)`), which this gateway does not accept.", code: "pii_detected")
                    : GatewayError.guardrail("The answer contained \(match.detector.noun) (pii detector `\(match.detector.rawValue)`) and was withheld.", code: "pii_detected")
            case .redact:
                out.append(contentsOf: state.placeholder(for: value, detector: match.detector, keep: false).utf8)
                changed = true
            case .restore where stage == .request:
                // Kept, so that the answer's placeholders are put back for this client.
                out.append(contentsOf: state.placeholder(for: value, detector: match.detector, keep: true).utf8)
                changed = true
            case .restore, .log:
                out.append(contentsOf: value.utf8)
            }
        }
        out.append(contentsOf: bytes[position...])
        return (String(decoding: out, as: UTF8.self), changed)
    }
}
