import NIOConcurrencyHelpers

/// One provider target's circuit: `failures` consecutive failures open it for `cooldown`, then
/// one trial request is let through (half-open); its success closes the circuit, its failure
/// opens it again. A dead provider so stops costing every request a timeout. Targets that name
/// the same provider and model share one (see `Route`).
final class CircuitBreaker: Sendable {
    enum State: Equatable {
        case closed(failures: Int)
        case open(until: ContinuousClock.Instant)
        case halfOpen
    }

    let failureThreshold: Int
    let cooldown: Duration
    private let state = NIOLockedValueBox(State.closed(failures: 0))
    /// Told whether the circuit is now open, each time that changes (for metrics).
    private let onChange: @Sendable (_ isOpen: Bool) -> Void

    init(failureThreshold: Int, cooldown: Duration, onChange: @escaping @Sendable (_ isOpen: Bool) -> Void = { _ in }) {
        self.failureThreshold = failureThreshold
        self.cooldown = cooldown
        self.onChange = onChange
    }

    /// Whether a request may go to the target now. Moving from open to half-open admits exactly one.
    func allows(now: ContinuousClock.Instant = .now) -> Bool {
        state.withLockedValue { state in
            switch state {
            case .closed: return true
            case .halfOpen: return false  // its one trial is under way
            case .open(let until):
                guard now >= until else { return false }
                state = .halfOpen
                return true
            }
        }
    }

    /// Whether the target is skipped now (open and cooling down, or its half-open trial is under way).
    func isOpen(now: ContinuousClock.Instant = .now) -> Bool {
        switch current {
        case .closed: false
        case .halfOpen: true
        case .open(let until): now < until
        }
    }

    func recordSuccess() {
        let wasOpen = state.withLockedValue { state in
            switch state {
            case .closed(failures: 0): return false  // the usual case: nothing to write
            case .closed: state = .closed(failures: 0); return false
            case .open, .halfOpen: state = .closed(failures: 0); return true
            }
        }
        if wasOpen { onChange(false) }
    }

    func recordFailure(now: ContinuousClock.Instant = .now) {
        let opened = state.withLockedValue { state -> Bool in
            switch state {
            case .closed(let failures) where failures + 1 < failureThreshold:
                state = .closed(failures: failures + 1)
                return false
            case .closed:
                state = .open(until: now + cooldown)
                return true
            default:
                state = .open(until: now + cooldown)
                return false
            }
        }
        if opened { onChange(true) }
    }

    var current: State { state.withLockedValue { $0 } }
}
