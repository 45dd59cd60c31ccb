import NIOCore

extension ByteBuffer {
    /// Writes `string` as a JSON string, as jansson writes it with the gateway's flags
    /// (`JSONStringEscaping`). A member set on every request (a provider's `model`) is written this
    /// way without making a jansson value to encode. Returns the bytes written.
    @discardableResult
    mutating func writeJSONString(_ string: String) -> Int {
        var string = string
        return string.withUTF8 { utf8 in
            let start = writerIndex
            reserveCapacity(minimumWritableBytes: utf8.count + 2)
            writeInteger(UInt8(ascii: "\""))
            JSONStringEscaping.forEachPiece(of: utf8) { writeBytes($0) }
            writeInteger(UInt8(ascii: "\""))
            return writerIndex - start
        }
    }
}
