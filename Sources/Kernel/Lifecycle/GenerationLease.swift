import NIOConcurrencyHelpers

/// Holds a generation open for one request: a reload retires the old generation, which shuts
/// its plugins down only after the last lease is released. A stream keeps its lease until the
/// stream ends or is dropped.
final class GenerationLease: Sendable {
    let generation: GatewayGeneration
    private let released = NIOLockedValueBox(false)

    init(_ generation: GatewayGeneration) {
        self.generation = generation
        generation.enter()
    }

    func release() {
        let first = released.withLockedValue { released in
            defer { released = true }
            return !released
        }
        if first { generation.leave() }
    }

    deinit { release() }
}
