import Synchronization

/// Trace and span ids, made without a system call: SplitMix64 (Steele, Lea and Flood, "Fast
/// splittable pseudorandom number generators", 2014) over one atomic counter, seeded once from
/// `SystemRandomNumberGenerator`. A `getrandom` per id was a measurable part of the request's
/// cost (issue #26); ids need to be unique and uniformly spread (trace-id ratio sampling reads
/// their low bytes), not unpredictable.
///
/// The counter advances by SplitMix's odd "golden gamma" and the output function is a bijection
/// of the counter, so no value repeats before 2^64 ids in one process; another process (a
/// replica) starts from its own random seed.
final class TraceIDGenerator: Sendable {
    private let state: Atomic<UInt64>

    init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
        state = Atomic(seed)
    }

    /// A span id; never the invalid zero.
    func spanID() -> SpanID {
        while true {
            let value = next()
            if value != 0 { return SpanID(value: value) }
        }
    }

    /// A trace id; never the invalid all-zero id.
    func traceID() -> TraceID {
        while true {
            let id = TraceID(high: next(), low: next())
            if id.isValid { return id }
        }
    }

    private func next() -> UInt64 {
        // Relaxed: only uniqueness of each increment matters, and the add is atomic.
        let counter = state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        return Self.mix(counter)
    }

    /// SplitMix64's output function (a bijection on UInt64).
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
