import NIOConcurrencyHelpers

/// One request's placeholders and counts, shared by its request side and its answer (whole or a
/// stream read later on another task). Numbers are per detector and per distinct value, so the
/// same address twice is `[EMAIL_1]` twice and a second address is `[EMAIL_2]`.
final class PIIRequestState: Sendable {
    struct Tally: Hashable {
        var stage: GuardrailStage
        var detector: PIIDetector
        var action: PIIAction
    }

    private struct State {
        var numbers: [PIIDetector: [String: Int]] = [:]
        /// Placeholder to value, for `restore` only: a redacted value is never kept.
        var originals: [String: String] = [:]
        var tallies: [Tally: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())

    func placeholder(for value: String, detector: PIIDetector, keep: Bool) -> String {
        state.withLockedValue { state in
            var numbers = state.numbers[detector, default: [:]]
            let number = numbers[value] ?? numbers.count + 1
            numbers[value] = number
            state.numbers[detector] = numbers
            let placeholder = "[\(detector.label)_\(number)]"
            if keep { state.originals[placeholder] = value }
            return placeholder
        }
    }

    func original(of placeholder: String) -> String? { state.withLockedValue { $0.originals[placeholder] } }

    func count(_ tally: Tally) { state.withLockedValue { $0.tallies[tally, default: 0] += 1 } }

    /// The counts since the last call, for a log line and the metrics.
    func takeTallies() -> [(tally: Tally, count: Int)] {
        state.withLockedValue { state in
            defer { state.tallies = [:] }
            return state.tallies.map { ($0.key, $0.value) }.sorted { "\($0.tally.detector)\($0.tally.action)" < "\($1.tally.detector)\($1.tally.action)" }
        }
    }
}
