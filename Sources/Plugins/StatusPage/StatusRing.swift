import NIOConcurrencyHelpers

/// The status page's memory: the last hour of requests in 360 buckets of 10 seconds, reused in
/// a ring. One for the whole process (figures survive a reload, as `/metrics`' do); its size is
/// bounded by buckets × (public models + keys per bucket), whatever the traffic.
final class StatusRing: Sendable {
    static let shared = StatusRing()

    static let bucketSeconds = 10
    let bucketCount: Int
    private let buckets: NIOLockedValueBox<[StatusBucket]>

    init(bucketCount: Int = 360) {
        self.bucketCount = bucketCount
        buckets = NIOLockedValueBox((0..<bucketCount).map { _ in StatusBucket(number: -1) })
    }

    static func bucketNumber(at unixSeconds: Double) -> Int { Int((unixSeconds / Double(bucketSeconds)).rounded(.down)) }

    /// Counts a request in the bucket of `unixSeconds` (when its answer ended).
    func record(_ observation: RequestObservation, at unixSeconds: Double) {
        let number = Self.bucketNumber(at: unixSeconds)
        let slot = ((number % bucketCount) + bucketCount) % bucketCount
        buckets.withLockedValue { ring in
            // A bucket from an hour ago (or never used) starts over.
            if ring[slot].number != number {
                guard ring[slot].number < number else { return }  // a late request for a span already reused: dropped
                ring[slot] = StatusBucket(number: number)
            }
            ring[slot].record(observation)
        }
    }

    /// The last `bucketCount` buckets up to the one of `unixSeconds`, oldest first; a span
    /// without requests is an empty bucket.
    func buckets(endingAt unixSeconds: Double) -> [StatusBucket] {
        let newest = Self.bucketNumber(at: unixSeconds)
        let ring = buckets.withLockedValue { $0 }  // a copy on write: the lock is held for a retain
        return (0..<bucketCount).map { offset in
            let number = newest - bucketCount + 1 + offset
            let bucket = ring[((number % bucketCount) + bucketCount) % bucketCount]
            return bucket.number == number ? bucket : StatusBucket(number: number)
        }
    }
}
