import Kernel
import NIOConcurrencyHelpers

/// Buckets in this process's memory: exact for one process, one lock for all buckets.
final class InMemoryBucketStore: BucketStore {
    private struct State { var tokens: Double; var updatedAt: ContinuousClock.Instant }
    private let states = NIOLockedValueBox<[String: State]>([:])

    func reserve(_ buckets: [Bucket], costs: [Double]) async throws -> Reservation {
        let now = ContinuousClock.now
        return states.withLockedValue { states in
            let current = buckets.map { bucket in
                states[bucket.key].map { bucket.refilled($0.tokens, after: (now - $0.updatedAt).inSeconds) } ?? bucket.capacity
            }
            let wait = zip(zip(buckets, current), costs).map { pair, cost in
                pair.1 >= cost ? 0 : (cost - pair.1) / pair.0.refillPerSecond
            }.max() ?? 0
            let allowed = wait == 0
            let remaining = zip(current, costs).map { allowed ? $0 - $1 : $0 }
            for (bucket, tokens) in zip(buckets, remaining) { states[bucket.key] = State(tokens: tokens, updatedAt: now) }
            return Reservation(allowed: allowed, remaining: remaining, retryAfter: wait)
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
