import Synchronization

/// Request ids: kept from the client's `x-request-id` when it is sane, otherwise made here.
enum RequestID {
    /// A version 4 UUID: the id also goes upstream, and some OpenAI-compatible servers
    /// (llama-cpp-python's among them) refuse an `x-request-id` that is not a UUID.
    ///
    /// Made without a system call: a counter run through SplitMix64, keyed by two random 64-bit
    /// values drawn once per process. The mix is a bijection, so two requests of one process get
    /// different words; with the version and variant bits set, ids of a process collide with
    /// odds of about 2⁻¹²², and across processes as random UUIDs do.
    static func make() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let high = mix(n &+ keys.0) & 0xFFFF_FFFF_FFFF_0FFF | 0x4000
        let low = mix(n ^ keys.1) & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { text in
            let digits = UnsafeBufferPointer(start: ("0123456789abcdef" as StaticString).utf8Start, count: 16)
            var position = 0
            for byteIndex in 0..<16 {  // 8-4-4-4-12 digits: a dash before bytes 4, 6, 8 and 10
                if byteIndex == 4 || byteIndex == 6 || byteIndex == 8 || byteIndex == 10 {
                    text[position] = UInt8(ascii: "-")
                    position += 1
                }
                let byte = Int(truncatingIfNeeded: (byteIndex < 8 ? high : low) >> UInt64(56 - 8 * (byteIndex & 7)))
                text[position] = digits[byte >> 4 & 0xF]
                text[position + 1] = digits[byte & 0xF]
                position += 2
            }
            return position
        }
    }

    private static let counter = Atomic<UInt64>(0)
    private static let keys: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// SplitMix64's finalizer.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The client's id when it is 1–128 visible ASCII characters (it ends up in logs and headers).
    static func fromClient(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count),
              value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return value
    }
}
