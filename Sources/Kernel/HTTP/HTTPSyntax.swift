/// The byte rules of an HTTP/1.1 head (RFC 9110, RFC 9112) that both directions check before
/// writing one: a header's name is a token, its value has no control character but the tab, a
/// request's target has only the characters a request-target may carry. A header that breaks them
/// would end the head early, or start a message of its own, in the bytes sent.
enum HTTPSyntax {
    /// RFC 9110's token: `!#$%&'*+-.^_`|~`, digits and letters.
    static func isToken(_ name: String) -> Bool {
        guard !name.isEmpty else { return false }
        let symbols = tokenSymbols  // read once: a static is behind a once-check on every access
        var name = name
        return name.withUTF8 { bytes in
            // Eight bytes at a time while they are letters, digits and '-', which is all a header's
            // name usually holds: every answer's names are checked.
            var index = 0
            while index + 8 <= bytes.count, isAlphanumericOrDash(ByteWord.load(UnsafeRawPointer(bytes.baseAddress!), at: index)) {
                index += 8
            }
            return bytes[index...].allSatisfy { byte in
                (byte | 0x20) &- UInt8(ascii: "a") < 26 || byte == UInt8(ascii: "-") || byte &- UInt8(ascii: "0") < 10 || symbols.contains(byte)
            }
        }
    }

    /// Whether each of a word's eight bytes is a letter, a digit or '-'.
    private static func isAlphanumericOrDash(_ word: UInt64) -> Bool {
        guard word & ByteWord.highBits == 0 else { return false }
        let letters = lanes(of: word | ByteWord.ones &* 0x20, from: UInt8(ascii: "a"), to: UInt8(ascii: "z"))
        let digits = lanes(of: word, from: UInt8(ascii: "0"), to: UInt8(ascii: "9"))
        let dashes = lanes(of: word, from: UInt8(ascii: "-"), to: UInt8(ascii: "-"))
        return letters | digits | dashes == ByteWord.highBits
    }

    /// The high bit of each byte of `word` (all below 0x80) that lies in `low...high`. Adding
    /// `0x80 - low` to a byte sets its high bit when it is at least `low`, adding `0x7F - high`
    /// when it is above `high`; neither carries into the next byte.
    private static func lanes(of word: UInt64, from low: UInt8, to high: UInt8) -> UInt64 {
        let atLeastLow = word &+ ByteWord.ones &* UInt64(0x80 - low)
        let aboveHigh = word &+ ByteWord.ones &* UInt64(0x7F - high)
        return atLeastLow & ~aboveHigh & ByteWord.highBits
    }

    /// A header's value, or a status line's reason: no control character (CR, LF and NUL among
    /// them) but the tab; bytes from 0x80 are allowed. Read eight bytes at a time: a response's
    /// values are checked on every answer.
    static func isValidValue(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            var index = 0
            while index + 8 <= bytes.count {
                let word = UInt64(littleEndian: UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self))
                let controls = (word &- ByteWord.ones &* 0x20) & ~word & ByteWord.highBits
                if controls | ByteWord.has(0x7F, in: word) != 0 { break }  // the bytes one by one decide
                index += 8
            }
            return bytes[index...].allSatisfy { byte in byte >= 0x20 ? byte != 0x7F : byte == UInt8(ascii: "\t") }
        }
    }

    /// RFC 9112's request-target: letters, digits, `-._~`, `:/?#[]@`, `!$&'()*+,;=` and `%`.
    static func isValidTarget(_ target: String) -> Bool {
        !target.isEmpty && allBytes(of: target) { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
                 UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "["), UInt8(ascii: "]"),
                 UInt8(ascii: "@"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
                 UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
                 UInt8(ascii: "%"):
                true
            default:
                false
            }
        }
    }

    /// Whether a header's name is `lowercase`, in any case (without making a lowercased copy).
    static func isNamed(_ name: String, _ lowercase: StaticString) -> Bool {
        guard name.utf8.count == lowercase.utf8CodeUnitCount else { return false }
        var name = name
        return name.withUTF8 { isLowercase($0, in: lowercase) }
    }

    /// Whether `bytes` are `lowercase` in any case.
    static func isLowercase(_ bytes: UnsafeBufferPointer<UInt8>, in lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in bytes.indices where bytes[index] != expected[index] {
            guard bytes[index] &- UInt8(ascii: "A") < 26, bytes[index] | 0x20 == expected[index] else { return false }
        }
        return true
    }

    /// Whether two headers' names are the same in any case.
    static func isSameName(_ name: String, _ other: String) -> Bool {
        guard name.utf8.count == other.utf8.count else { return false }
        var name = name, other = other
        return name.withUTF8 { bytes in
            other.withUTF8 { otherBytes in
                for index in bytes.indices where bytes[index] != otherBytes[index] {
                    let lower = bytes[index] | 0x20
                    guard lower == otherBytes[index] | 0x20, lower &- UInt8(ascii: "a") < 26 else { return false }
                }
                return true
            }
        }
    }

    /// `content-length` or `transfer-encoding`, in any case: the framing, which is always the
    /// writer's own.
    static func isFraming(_ name: String) -> Bool {
        isNamed(name, "content-length") || isNamed(name, "transfer-encoding")
    }

    /// On the string's contiguous bytes where it has them (a native string does), not through
    /// the UTF-8 view's iterator.
    private static func allBytes(of text: String, satisfy test: (UInt8) -> Bool) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(test) } ?? text.utf8.allSatisfy(test)
    }

    /// The symbols a token may hold besides letters and digits, one bit each.
    private static let tokenSymbols = ByteSet("!#$%&'*+-.^_`|~")
}

/// A set of bytes as 256 bits: a membership test is a shift and a mask.
struct ByteSet: Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init(_ members: StaticString) {
        UnsafeBufferPointer(start: members.utf8Start, count: members.utf8CodeUnitCount).forEach { insert($0) }
    }

    private mutating func insert(_ byte: UInt8) {
        let bit = UInt64(1) << (byte & 63)
        switch byte >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        // Selects rather than switches: a switch on the quarter becomes a jump through a table.
        let word = byte < 128 ? (byte < 64 ? words.0 : words.1) : (byte < 192 ? words.2 : words.3)
        return word >> (byte & 63) & 1 != 0
    }
}
