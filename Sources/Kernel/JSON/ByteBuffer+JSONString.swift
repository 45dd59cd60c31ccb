import NIOCore

extension ByteBuffer {
    /// Writes `string` as a JSON string (RFC 8259, section 7): quoted, with the quotation mark, the
    /// reverse solidus and the control characters escaped, and every other character as its UTF-8,
    /// as jansson writes it with the gateway's flags. A member set on every request (a provider's
    /// `model`) is written this way without making a jansson value to encode. Returns the bytes written.
    @discardableResult
    mutating func writeJSONString(_ string: String) -> Int {
        var string = string
        return string.withUTF8 { utf8 in
            let start = writerIndex
            reserveCapacity(minimumWritableBytes: utf8.count + 2)
            writeInteger(UInt8(ascii: "\""))
            var unwritten = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                writeBytes(UnsafeBufferPointer(rebasing: utf8[unwritten..<index]))
                writeEscape(of: byte)
                unwritten = index + 1
            }
            writeBytes(UnsafeBufferPointer(rebasing: utf8[unwritten...]))
            writeInteger(UInt8(ascii: "\""))
            return writerIndex - start
        }
    }

    private mutating func writeEscape(of byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): writeStaticString("\\\"")
        case UInt8(ascii: "\\"): writeStaticString("\\\\")
        case UInt8(ascii: "\n"): writeStaticString("\\n")
        case UInt8(ascii: "\r"): writeStaticString("\\r")
        case UInt8(ascii: "\t"): writeStaticString("\\t")
        case 0x08: writeStaticString("\\b")
        case 0x0C: writeStaticString("\\f")
        default:
            let hex: StaticString = "0123456789ABCDEF"
            writeStaticString("\\u00")
            writeInteger(hex.utf8Start[Int(byte >> 4)])
            writeInteger(hex.utf8Start[Int(byte & 0x0F)])
        }
    }
}
