/// Durations counted in fixed buckets: small enough (64 bytes, no allocation) to keep one per
/// public model per 10 seconds for an hour, and merged by adding counts.
struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in seconds: those of `/metrics`' duration histograms, so that the page's
    /// quantiles and Grafana's `histogram_quantile` over the same requests agree.
    static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

    /// One count per bound, then the overflow bucket.
    private(set) var counts = InlineArray<16, UInt32>(repeating: 0)

    var total: Int {
        var sum = 0
        for index in counts.indices { sum += Int(counts[index]) }
        return sum
    }

    mutating func record(_ seconds: Double) {
        var index = 0
        while index < Self.bounds.count, !(seconds <= Self.bounds[index]) { index += 1 }
        if counts[index] < .max { counts[index] += 1 }
    }

    mutating func add(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] = counts[index].addingReportingOverflow(other.counts[index]).partialValue }
    }

    /// The `q` quantile (0…1) in seconds, interpolated linearly within its bucket as Prometheus
    /// does; the largest bound when it falls in the overflow bucket; nil without any count.
    func quantile(_ q: Double) -> Double? {
        let total = self.total
        guard total > 0 else { return nil }
        let rank = min(max(q, 0), 1) * Double(total)
        var below = 0.0
        for index in counts.indices {
            let count = Double(counts[index])
            if count > 0, below + count >= rank {
                guard index < Self.bounds.count else { return Self.bounds[Self.bounds.count - 1] }
                let lower = index == 0 ? 0 : Self.bounds[index - 1], upper = Self.bounds[index]
                return lower + (upper - lower) * max(0, rank - below) / count
            }
            below += count
        }
        return Self.bounds[Self.bounds.count - 1]
    }

    static func == (lhs: LatencyHistogram, rhs: LatencyHistogram) -> Bool {
        lhs.counts.indices.allSatisfy { lhs.counts[$0] == rhs.counts[$0] }
    }
}
