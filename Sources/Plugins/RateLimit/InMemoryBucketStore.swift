import Kernel
import NIOConcurrencyHelpers

/// Buckets in this process's memory: exact for one process, one lock for all buckets.
final class InMemoryBucketStore: BucketStore {
    private struct State { var tokens: Double; var updatedAt: ContinuousClock.Instant }
    private let states = NIOLockedValueBox<[String: State]>([:])

    func reserve(_ buckets: [Bucket], costs: [Double]) async throws -> Reservation {
        let now = ContinuousClock.now
        return states.withLockedValue { states in
            var remaining = buckets.map { bucket in
                states[bucket.key].map { bucket.refilled($0.tokens, after: (now - $0.updatedAt).inSeconds) } ?? bucket.capacity
            }
            var wait = 0.0
            for index in buckets.indices where remaining[index] < costs[index] {
                wait = max(wait, (costs[index] - remaining[index]) / buckets[index].refillPerSecond)
            }
            if wait == 0 { for index in buckets.indices { remaining[index] -= costs[index] } }
            for index in buckets.indices { states[buckets[index].key] = State(tokens: remaining[index], updatedAt: now) }
            return Reservation(allowed: wait == 0, remaining: remaining, retryAfter: wait)
        }
    }

    func adjust(_ buckets: [Bucket], deltas: [Double]) async throws {
        apply(buckets, deltas: deltas)
    }

    /// At once, on the caller's thread: it is one lock and some arithmetic, far less than handing
    /// it to another thread.
    func settle(_ buckets: [Bucket], deltas: [Double], background: BackgroundWork) {
        apply(buckets, deltas: deltas)
    }

    private func apply(_ buckets: [Bucket], deltas: [Double]) {
        let now = ContinuousClock.now
        states.withLockedValue { states in
            for (bucket, delta) in zip(buckets, deltas) {
                let tokens = states[bucket.key].map { bucket.refilled($0.tokens, after: (now - $0.updatedAt).inSeconds) } ?? bucket.capacity
                states[bucket.key] = State(tokens: min(bucket.capacity, tokens + delta), updatedAt: now)
            }
        }
    }

    func shutdown() async {}
}
