/// The byte rules of an HTTP/1.1 head (RFC 9110, RFC 9112) that both directions check before
/// writing one: a header's name is a token, its value has no control character but the tab, a
/// request's target has only the characters a request-target may carry. A header that breaks them
/// would end the head early, or start a message of its own, in the bytes sent.
enum HTTPSyntax {
    /// RFC 9110's token: `!#$%&'*+-.^_`|~`, digits and letters.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && allBytes(of: name) { byte in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                 UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
                 UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                true
            default:
                false
            }
        }
    }

    /// A header's value, or a status line's reason: no control character (CR, LF and NUL among
    /// them) but the tab; bytes from 0x80 are allowed.
    static func isValidValue(_ value: String) -> Bool {
        allBytes(of: value) { byte in byte >= 0x20 ? byte != 0x7F : byte == UInt8(ascii: "\t") }
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
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return zip(name.utf8, expected).allSatisfy { byte, lower in
            byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == lower)
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
}
