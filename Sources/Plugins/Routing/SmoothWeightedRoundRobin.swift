import Kernel
import NIOConcurrencyHelpers

/// nginx's smooth weighted round robin: over any window of `sum(weights)` picks each target
/// comes up exactly `weight` times, spread out evenly (3:1 gives A A B A, A A B A, …).
final class SmoothWeightedRoundRobin: Sendable {
    private let targets: [ModelRoute.Target]
    private let current: NIOLockedValueBox<[Int]>

    init(_ targets: [ModelRoute.Target]) {
        self.targets = targets.filter { $0.weight > 0 }
        current = NIOLockedValueBox([Int](repeating: 0, count: self.targets.count))
    }

    /// The targets in the order to try them: this turn's pick first, then the rest by weight.
    func order() -> [ModelRoute.Target] {
        guard !targets.isEmpty else { return [] }
        let total = targets.reduce(0) { $0 + $1.weight }
        let first = current.withLockedValue { current in
            var best = 0
            for index in targets.indices {
                current[index] += targets[index].weight
                if current[index] > current[best] { best = index }
            }
            current[best] -= total
            return best
        }
        let rest = targets.indices.filter { $0 != first }.sorted { targets[$0].weight > targets[$1].weight }
        return [targets[first]] + rest.map { targets[$0] }
    }
}
