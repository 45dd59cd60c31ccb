import NIOConcurrencyHelpers

/// A long-running job of `BackgroundWork` (`start`), which its owner stops or waits for: a
/// generation's health probes, the trace exporter. A job never begun when it is stopped never
/// begins, so stopping one whose runner is not running (yet, or any more) does not wait.
public final class BackgroundJob: Sendable {
    private enum Phase {
        case waiting, running, ended
    }

    private struct State {
        var phase = Phase.waiting
        var stopRequested = false
        var bodyEnded = false
        /// The job's own wait for a stop or for its body's end.
        var wake: CheckedContinuation<Void, Never>?
        /// Callers of `stop` and `waitUntilEnded`.
        var endWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())

    init() {}

    /// Cancels the job (a job not yet begun never begins) and returns once it has ended.
    public func stop() async {
        let wake = state.withLockedValue { state in
            state.stopRequested = true
            defer { state.wake = nil }
            return state.wake
        }
        wake?.resume()
        await waitUntilEnded()
    }

    /// Returns once the job has ended, without asking it to; at once if it has not begun.
    public func waitUntilEnded() async {
        await withCheckedContinuation { continuation in
            let now = state.withLockedValue { state in
                guard state.phase == .running else { return true }
                state.endWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Whether the job is running now.
    public var isRunning: Bool { state.withLockedValue { $0.phase == .running } }

    /// The job's child task: `body` in a child of its own, cancelled on `stop` (or when the
    /// runner is cancelled).
    func run(_ body: @escaping @Sendable () async -> Void) async {
        let begins = state.withLockedValue { state in
            guard !state.stopRequested else {
                state.phase = .ended
                return false
            }
            state.phase = .running
            return true
        }
        guard begins else { return }
        await withDiscardingTaskGroup { group in
            group.addTask {
                await body()
                self.wakeUp { $0.bodyEnded = true }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let now = state.withLockedValue { state in
                        if state.stopRequested || state.bodyEnded { return true }
                        state.wake = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                self.wakeUp { $0.stopRequested = true }
            }
            group.cancelAll()
        }
        let waiters = state.withLockedValue { state in
            state.phase = .ended
            defer { state.endWaiters = [] }
            return state.endWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The runner stopped accepting before the job was submitted: it never runs.
    func abandon() {
        state.withLockedValue { $0.phase = .ended }
    }

    private func wakeUp(_ change: (inout State) -> Void) {
        let wake = state.withLockedValue { state in
            change(&state)
            defer { state.wake = nil }
            return state.wake
        }
        wake?.resume()
    }
}
