import NIOConcurrencyHelpers

/// Lets identical requests in flight at the same time wait for one upstream call: the first to
/// arrive leads, the others wait (bounded) for it to finish and then read its answer from the
/// cache. A failed leader shares nothing: the waiters then make their own calls.
final class Coalescer: Sendable {
    enum Role {
        case leader
        /// Whether the leader finished with an answer worth reading from the cache.
        case follower(leaderSucceeded: Bool)
    }

    private final class Flight: Sendable {
        let outcome = NIOLockedValueBox<Bool?>(nil)
    }

    private let flights = NIOLockedValueBox<[String: Flight]>([:])

    func join(_ key: String, timeout: Duration) async -> Role {
        let (flight, leads) = flights.withLockedValue { flights in
            if let flight = flights[key] { return (flight, false) }
            let flight = Flight()
            flights[key] = flight
            return (flight, true)
        }
        if leads { return .leader }
        // Waiters poll: a flight is rare and short next to an upstream call, and polling needs no
        // cancellation plumbing for the timeout.
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !Task.isCancelled {
            if let succeeded = flight.outcome.withLockedValue({ $0 }) { return .follower(leaderSucceeded: succeeded) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return .follower(leaderSucceeded: false)
    }

    func finish(_ key: String, succeeded: Bool) {
        let flight = flights.withLockedValue { $0.removeValue(forKey: key) }
        flight?.outcome.withLockedValue { $0 = succeeded }
    }
}
