import Kernel

/// What `pii` does with a find of one detector.
enum PIIAction: String, Sendable, CaseIterable {
    /// Refuse the request (400) or end the answer with an error, naming the detector only.
    case block
    /// Replace it with a numbered placeholder such as `[EMAIL_1]`.
    case redact
    /// Redact it in the request and put it back wherever the answer repeats the placeholder.
    case restore
    /// Leave it; count it in a log line and the metrics, without the value.
    case log
}

/// The action of each enabled detector: the manifest's, with a caller's own changes on top.
struct PIIPolicy: Sendable, Equatable {
    var actions: [PIIDetector: PIIAction]

    var detectors: [PIIDetector] { actions.keys.sorted() }
    var restores: Bool { actions.values.contains(.restore) }

    /// From `{"email": "redact", "phone": "off", …}`; `path` names the config for errors.
    static func parse(_ json: JSON, base: PIIPolicy, path: String) throws(GuardrailConfigError) -> PIIPolicy {
        guard json.isObject else { throw GuardrailConfigError(path: path, message: "expected an object of detector to action") }
        var policy = base
        for (name, value) in json.members {
            guard let detector = PIIDetector(rawValue: name) else {
                throw GuardrailConfigError(path: "\(path).\(name)",
                                     message: "unknown detector; known: " + PIIDetector.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let action = value.string, action == "off" || PIIAction(rawValue: action) != nil else {
                throw GuardrailConfigError(path: "\(path).\(name)", message: "expected one of block, redact, restore, log, off")
            }
            policy.actions[detector] = PIIAction(rawValue: action)
        }
        return policy
    }
}
