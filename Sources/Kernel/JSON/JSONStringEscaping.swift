/// A JSON string's content as jansson's `dump_string` writes it without `JSON_ENSURE_ASCII` or
/// `JSON_ESCAPE_SLASH` (RFC 8259, section 7): the quotation mark, the reverse solidus and the
/// control characters escaped, every other byte as it is. One walk for every writer of JSON text
/// that does not go through jansson (the log line, a spliced request member).
enum JSONStringEscaping {
    /// Calls `write` with the pieces of `utf8`'s escaped form, in order: runs of bytes written as
    /// they are, and the escape of each byte that is not. Plain text is passed over eight bytes at
    /// a time (non-ASCII text is taken a byte at a time).
    @inline(__always)
    static func forEachPiece(of utf8: UnsafeBufferPointer<UInt8>, _ write: (UnsafeRawBufferPointer) -> Void) {
        guard let start = UnsafeRawPointer(utf8.baseAddress) else { return }
        var plainStart = 0, index = 0
        while index < utf8.count {
            if index + 8 <= utf8.count {
                let word = ByteWord.load(start, at: index)
                let marks = ByteWord.has(UInt8(ascii: "\""), in: word) | ByteWord.has(UInt8(ascii: "\\"), in: word)
                    | ByteWord.hasControlOrNonASCII(word)
                index += ByteWord.firstMarked(marks)  // all eight when none is marked
                if marks == 0 { continue }
            }
            let byte = utf8[index]
            index += 1
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            if index - 1 > plainStart { write(UnsafeRawBufferPointer(start: start + plainStart, count: index - 1 - plainStart)) }
            plainStart = index
            escape(byte, write)
        }
        if utf8.count > plainStart { write(UnsafeRawBufferPointer(start: start + plainStart, count: utf8.count - plainStart)) }
    }

    private static func escape(_ byte: UInt8, _ write: (UnsafeRawBufferPointer) -> Void) {
        let short: StaticString
        switch byte {
        case UInt8(ascii: "\""): short = "\\\""
        case UInt8(ascii: "\\"): short = "\\\\"
        case 0x08: short = "\\b"
        case 0x0C: short = "\\f"
        case 0x0A: short = "\\n"
        case 0x0D: short = "\\r"
        case 0x09: short = "\\t"
        default:
            let hex = ("0123456789ABCDEF" as StaticString).utf8Start
            let escape = (UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)])
            return withUnsafeBytes(of: escape) { write($0) }
        }
        write(UnsafeRawBufferPointer(start: short.utf8Start, count: short.utf8CodeUnitCount))
    }
}
