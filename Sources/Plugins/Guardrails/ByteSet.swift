/// A set of bytes as a 256-bit mask.
struct ByteSet: Sendable, Equatable {
    var bits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    static func == (lhs: ByteSet, rhs: ByteSet) -> Bool { lhs.bits == rhs.bits }

    @inline(__always) func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return bits.0 & bit != 0
        case 1: return bits.1 & bit != 0
        case 2: return bits.2 & bit != 0
        default: return bits.3 & bit != 0
        }
    }

    mutating func insert(_ byte: UInt8) {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: bits.0 |= bit
        case 1: bits.1 |= bit
        case 2: bits.2 |= bit
        default: bits.3 |= bit
        }
    }

    mutating func insert(_ range: ClosedRange<UInt8>) { for byte in range { insert(byte) } }
    mutating func formUnion(_ other: ByteSet) {
        bits = (bits.0 | other.bits.0, bits.1 | other.bits.1, bits.2 | other.bits.2, bits.3 | other.bits.3)
    }
    var inverted: ByteSet { ByteSet(bits: (~bits.0, ~bits.1, ~bits.2, ~bits.3)) }

    /// With the other case of each ASCII letter.
    var caseFolded: ByteSet {
        var folded = self
        for byte in UInt8(65)...90 where contains(byte) || contains(byte + 32) {
            folded.insert(byte)
            folded.insert(byte + 32)
        }
        return folded
    }

    static func of(_ bytes: UInt8...) -> ByteSet {
        var set = ByteSet()
        for byte in bytes { set.insert(byte) }
        return set
    }

    static let digit: ByteSet = { var s = ByteSet(); s.insert(48...57); return s }()
    static let word: ByteSet = { var s = digit; s.insert(65...90); s.insert(97...122); s.insert(95); return s }()
    static let space: ByteSet = .of(32, 9, 10, 11, 12, 13)
    static let anyButNewline: ByteSet = ByteSet.of(10).inverted
}
