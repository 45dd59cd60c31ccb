import NIOConcurrencyHelpers

/// nginx's smooth weighted round robin: over any window of `sum(weights)` picks each target
/// comes up exactly `weight` times, spread out evenly (3:1 gives A A B A, A A B A, …).
final class SmoothWeightedRoundRobin: Sendable {
    /// The positions of the targets that can be picked (weight above zero).
    private let positions: [Int]
    private let weights: [Int]
    private let total: Int
    private let current: NIOLockedValueBox<[Int]>

    /// Targets at positions `0..<weights.count`, with those weights.
    init(weights: [Int]) {
        positions = weights.indices.filter { weights[$0] > 0 }
        self.weights = weights
        total = weights.reduce(0, +)
        current = NIOLockedValueBox([Int](repeating: 0, count: weights.count))
    }

    /// The targets' positions in the order to try them: this turn's pick first, then the rest by
    /// weight. A weight of zero is never tried.
    func order() -> [Int] {
        guard positions.count > 1 else { return positions }  // nothing to choose: no lock, no new array
        let first = current.withLockedValue { current in
            var best = positions[0]
            for position in positions {
                current[position] += weights[position]
                if current[position] > current[best] { best = position }
            }
            current[best] -= total
            return best
        }
        return [first] + positions.filter { $0 != first }.sorted { weights[$0] > weights[$1] }
    }
}
