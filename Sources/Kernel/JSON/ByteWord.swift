#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Eight bytes read as one word, so that plain text (JSON, a header's value) is passed over eight bytes at a time.
enum ByteWord {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// The eight bytes at `offset`, the first of them in the lowest lane.
    @inline(__always)
    static func load(_ bytes: UnsafeRawPointer, at offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The offset within the word of the first byte that a non-zero `has` or
    /// `hasControlOrNonASCII` result marks. Only its lowest mark is exact (a borrow runs upward,
    /// into later bytes, never down), and that is the one counted.
    @inline(__always)
    static func firstMarked(_ marks: UInt64) -> Int { marks.trailingZeroBitCount >> 3 }

    /// Non-zero when some byte of `word` is `byte` (the high bit of that byte lane is set).
    @inline(__always)
    static func has(_ byte: UInt8, in word: UInt64) -> UInt64 {
        let matches = word ^ (ones &* UInt64(byte))
        return (matches &- ones) & ~matches & highBits
    }

    /// Non-zero when some byte of `word` is below 0x20 (a control character) or not ASCII.
    @inline(__always)
    static func hasControlOrNonASCII(_ word: UInt64) -> UInt64 {
        (((word &- ones &* 0x20) & ~word) | word) & highBits
    }

    /// Whether two runs of bytes are the same: `memcmp`, where `elementsEqual` on raw buffers
    /// steps through them one byte at a time, generically.
    @inline(__always)
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let first = a.baseAddress, let second = b.baseAddress else { return true }
        return memcmp(first, second, a.count) == 0
    }

    /// Whether a run of bytes is a literal's UTF-8.
    @inline(__always)
    static func equal(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        equal(bytes, UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}
