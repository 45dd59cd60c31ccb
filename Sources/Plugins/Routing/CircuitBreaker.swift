import NIOConcurrencyHelpers

/// One circuit per provider target: `failures` consecutive failures open it for `cooldown`, then
/// one trial request is let through (half-open); its success closes the circuit, its failure
/// opens it again. A dead provider so stops costing every request a timeout.
final class CircuitBreaker: Sendable {
    enum State: Equatable {
        case closed(failures: Int)
        case open(until: ContinuousClock.Instant)
        case halfOpen
    }

    let failureThreshold: Int
    let cooldown: Duration
    private let states = NIOLockedValueBox<[String: State]>([:])
    /// Told whether a target's circuit is now open, each time that changes (for metrics).
    private let onChange: @Sendable (_ target: String, _ isOpen: Bool) -> Void

    init(failureThreshold: Int, cooldown: Duration, onChange: @escaping @Sendable (_ target: String, _ isOpen: Bool) -> Void = { _, _ in }) {
        self.failureThreshold = failureThreshold
        self.cooldown = cooldown
        self.onChange = onChange
    }

    /// Whether a request may go to `target` now. Moving from open to half-open admits exactly one.
    func allows(_ target: String, now: ContinuousClock.Instant = .now) -> Bool {
        states.withLockedValue { states in
            switch states[target] ?? .closed(failures: 0) {
            case .closed: return true
            case .halfOpen: return false  // its one trial is under way
            case .open(let until):
                guard now >= until else { return false }
                states[target] = .halfOpen
                return true
            }
        }
    }

    /// Whether `target` is skipped now (open and cooling down, or its half-open trial is under way).
    func isOpen(_ target: String, now: ContinuousClock.Instant = .now) -> Bool {
        switch state(of: target) {
        case .closed: false
        case .halfOpen: true
        case .open(let until): now < until
        }
    }

    func recordSuccess(_ target: String) {
        let wasOpen = states.withLockedValue { states in
            switch states[target] {
            case nil, .closed(failures: 0): return false  // the usual case: nothing to write
            case .closed: states[target] = .closed(failures: 0); return false
            case .open, .halfOpen: states[target] = .closed(failures: 0); return true
            }
        }
        if wasOpen { onChange(target, false) }
    }

    func recordFailure(_ target: String, now: ContinuousClock.Instant = .now) {
        let opened = states.withLockedValue { states -> Bool in
            switch states[target] ?? .closed(failures: 0) {
            case .closed(let failures) where failures + 1 < failureThreshold:
                states[target] = .closed(failures: failures + 1)
                return false
            case .closed:
                states[target] = .open(until: now + cooldown)
                return true
            default:
                states[target] = .open(until: now + cooldown)
                return false
            }
        }
        if opened { onChange(target, true) }
    }

    func state(of target: String) -> State { states.withLockedValue { $0[target] ?? .closed(failures: 0) } }
}
