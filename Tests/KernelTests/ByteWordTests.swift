import Testing
@testable import Kernel

/// Eight bytes at a time: a marked word stops at exactly the first byte that needed a closer look,
/// whatever follows it (the tricks' false marks, from a borrow, only ever fall after a true one).
@Suite struct ByteWordTests {
    static func firstMarked(_ bytes: [UInt8], _ marks: (UInt64) -> UInt64) -> Int {
        bytes.withUnsafeBytes { ByteWord.firstMarked(marks(ByteWord.load($0.baseAddress!, at: 0))) }
    }

    @Test func theFirstMarkedByteIsTheFirstThatMatches() {
        var generator = SystemRandomNumberGenerator()
        // Bytes near the ones looked for, where borrows and false marks happen.
        let near: [UInt8] = [0x00, 0x01, 0x09, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x61, 0x7E, 0x7F, 0x80, 0xC3, 0xFF]
        for _ in 0..<20_000 {
            let bytes = (0..<8).map { _ in near.randomElement(using: &generator)! }
            let quoteOrBackslash = { (word: UInt64) in
                ByteWord.has(UInt8(ascii: "\""), in: word) | ByteWord.has(UInt8(ascii: "\\"), in: word)
            }
            let special = { (word: UInt64) in quoteOrBackslash(word) | ByteWord.hasControlOrNonASCII(word) }
            #expect(Self.firstMarked(bytes, quoteOrBackslash)
                    == bytes.firstIndex { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") } ?? 8, "\(bytes)")
            #expect(Self.firstMarked(bytes, special)
                    == bytes.firstIndex { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 || $0 >= 0x80 } ?? 8, "\(bytes)")
        }
    }
}
