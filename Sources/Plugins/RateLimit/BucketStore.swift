import Kernel

/// Where token buckets live: in this process, or in Redis for replicas to share.
protocol BucketStore: Sendable {
    /// Takes `costs[i]` from every bucket if each has enough; otherwise takes nothing.
    func reserve(_ buckets: [Bucket], costs: [Double]) async throws -> Reservation
    /// Adds `deltas[i]` (negative takes, positive gives back) whatever the balance; a bucket may
    /// go below zero (a debt paid off by refill), so real usage is always accounted.
    func adjust(_ buckets: [Bucket], deltas: [Double]) async throws
    /// `adjust` once an answer is out, so that it never delays one; its failure is ignored.
    func settle(_ buckets: [Bucket], deltas: [Double], background: BackgroundWork)
    func shutdown() async
}

extension BucketStore {
    /// On the background work: a store's round trip must not hold the request's task. Refused
    /// only while the gateway stops: the bucket then keeps the estimate, which refills within its
    /// period anyway.
    func settle(_ buckets: [Bucket], deltas: [Double], background: BackgroundWork) {
        background.submit { try? await self.adjust(buckets, deltas: deltas) }
    }
}

/// One limit: `capacity` units refilled continuously over `period` seconds.
struct Bucket: Sendable {
    var key: String
    var capacity: Double
    var period: Double
    var refillPerSecond: Double { capacity / period }
}

struct Reservation: Sendable {
    var allowed: Bool
    /// Units left in each bucket after the reservation.
    var remaining: [Double]
    /// When refused: seconds until every bucket could pay.
    var retryAfter: Double
}

extension Bucket {
    /// Tokens after refilling `tokens` for `elapsed` seconds.
    func refilled(_ tokens: Double, after elapsed: Double) -> Double { min(capacity, tokens + max(0, elapsed) * refillPerSecond) }

    /// Seconds until a bucket holding `tokens` is full again (for the reset headers).
    func secondsUntilFull(from tokens: Double) -> Double { max(0, (capacity - tokens) / refillPerSecond) }
}
