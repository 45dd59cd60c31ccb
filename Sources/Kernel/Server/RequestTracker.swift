import NIOConcurrencyHelpers

/// Counts requests in flight so that a drain can wait for them, and cancel the stragglers.
public final class RequestTracker: Sendable {
    private let state = NIOLockedValueBox(State())

    private struct State {
        var nextID = 0
        var tasks: [Int: Task<Void, Never>?] = [:]
    }

    public init() {}

    public var inFlight: Int { state.withLockedValue { $0.tasks.count } }

    /// Registers a new request. Requests that reach an open connection while draining are still
    /// served (the drain waits for them too); the listeners are what stop new work.
    func begin() -> Ticket {
        state.withLockedValue { state in
            state.nextID += 1
            state.tasks[state.nextID] = .some(nil)
            return Ticket(id: state.nextID, tracker: self)
        }
    }

    func attach(_ task: Task<Void, Never>, to ticket: Ticket) {
        state.withLockedValue { state in
            if state.tasks[ticket.id] != nil { state.tasks[ticket.id] = task }
        }
    }

    fileprivate func end(_ id: Int) {
        state.withLockedValue { _ = $0.tasks.removeValue(forKey: id) }
    }

    /// Cancels the requests still in flight (at the end of a drain); returns how many.
    func cancelAll() -> Int {
        let leftovers = state.withLockedValue { $0.tasks.values.compactMap { $0 } }
        for task in leftovers { task.cancel() }
        return leftovers.count
    }

    struct Ticket: Sendable {
        let id: Int
        let tracker: RequestTracker
        func end() { tracker.end(id) }
    }
}
