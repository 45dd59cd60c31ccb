import Atomics

/// Holds a generation open for one request: a reload retires the old generation, which shuts
/// its plugins down only after the last lease is released. A stream keeps its lease until the
/// stream ends or is dropped.
final class GenerationLease: Sendable {
    let generation: GatewayGeneration
    private let released = ManagedAtomic(false)

    init(_ generation: GatewayGeneration) {
        self.generation = generation
        generation.enter()
    }

    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { generation.leave() }
    }

    deinit { release() }
}
