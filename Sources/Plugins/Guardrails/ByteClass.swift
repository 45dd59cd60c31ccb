/// Byte classes the scanners share (ASCII; any byte of a multi-byte character counts as a letter,
/// so a value never starts or ends inside a word of another script).
enum ByteClass {
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 48 < 10 }
    @inline(__always) static func isUpper(_ b: UInt8) -> Bool { b &- 65 < 26 }
    @inline(__always) static func isLower(_ b: UInt8) -> Bool { b &- 97 < 26 }
    @inline(__always) static func isAlpha(_ b: UInt8) -> Bool { isUpper(b) || isLower(b) }
    @inline(__always) static func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || isAlpha(b) }
    @inline(__always) static func isHex(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20) &- 97 < 6 }
    /// A letter, digit, `_` or part of a non-ASCII character: what a word is made of.
    @inline(__always) static func isWord(_ b: UInt8) -> Bool { isAlnum(b) || b == 95 || b >= 0x80 }
    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }

    /// The byte before `index`, or a space at the start.
    @inline(__always) static func before(_ text: [UInt8], _ index: Int) -> UInt8 { index > 0 ? text[index - 1] : 32 }
    /// The byte at `index`, or a space past the end.
    @inline(__always) static func at(_ text: [UInt8], _ index: Int) -> UInt8 { index < text.count ? text[index] : 32 }
}
