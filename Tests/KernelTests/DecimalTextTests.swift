import Testing
@testable import Kernel

struct DecimalTextTests {
    static let edges: [Int] = [0, 1, 9, 10, 99, 100, 999_999_999_999_999, 1_000_000_000_000_000, .max, .max - 1, .min, .min + 1, -1, -9, -10]

    @Test func spellsEveryIntegerAsStringDoes() {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<20_000).map { index in
            // Every length: a random value cut to a random number of bits, either sign.
            let value = Int(truncatingIfNeeded: generator.next() as UInt64) >> Int.random(in: 0..<64, using: &generator)
            return index % 2 == 0 ? value : -value
        }
        for value in Self.edges + random {
            #expect(String(decimal: value) == String(value), "\(value)")
            #expect(DecimalText.length(of: value) == String(value).utf8.count, "\(value)")
        }
    }

    @Test func appendsAfterWhatIsThere() {
        for value in Self.edges {
            var bytes = Array("x=".utf8)
            DecimalText.append(value, to: &bytes)
            #expect(bytes == Array("x=\(value)".utf8))
        }
        for value: UInt64 in [0, 9, 10, UInt64(Int.max), UInt64(Int.max) + 1, .max] {
            var bytes = Array("x=".utf8)
            DecimalText.append(value, to: &bytes)
            #expect(bytes == Array("x=\(value)".utf8))
        }
    }
}
