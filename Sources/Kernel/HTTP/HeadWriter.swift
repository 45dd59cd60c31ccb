import NIOCore

/// Writes a head whose size was measured first, in one go: a `ByteBuffer` write per piece cost
/// more than the rest of the head (docs/ARCHITECTURE.md, "What a request may cost").
struct HeadWriter {
    private let base: UnsafeMutableRawPointer
    private(set) var offset = 0

    /// Gives `write` `size` bytes at the end of `buffer` to fill, exactly.
    static func write(_ size: Int, to buffer: inout ByteBuffer, _ write: (inout HeadWriter) -> Void) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = HeadWriter(base: raw.baseAddress!)
            write(&out)
            precondition(out.offset == size, "the head's size was measured wrong")
            return out.offset
        }
    }

    mutating func put(_ text: StaticString) {
        (base + offset).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        offset += text.utf8CodeUnitCount
    }

    mutating func put(_ text: some StringProtocol) {
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes in
            if let start = bytes.baseAddress { (base + offset).copyMemory(from: start, byteCount: bytes.count) }
            return bytes.count
        }
        if let copied {
            offset += copied
        } else {
            for byte in text.utf8 {
                base.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
                offset += 1
            }
        }
    }

    mutating func put(bytes: UnsafeRawBufferPointer) {
        guard let start = bytes.baseAddress else { return }
        (base + offset).copyMemory(from: start, byteCount: bytes.count)
        offset += bytes.count
    }

    /// An integer in decimal: `DecimalText.length(of:)` bytes.
    mutating func put(decimal value: Int) {
        offset += DecimalText.write(value, into: UnsafeMutableBufferPointer(start: (base + offset).assumingMemoryBound(to: UInt8.self),
                                                                            count: DecimalText.length(of: value)))
    }

    /// A header line: `name: value` and CR LF.
    mutating func put(name: String, value: String) {
        put(name)
        put(": ")
        put(value)
        put("\r\n")
    }

    /// The bytes `put(name:value:)` writes.
    static func size(name: String, value: String) -> Int { name.utf8.count + value.utf8.count + 4 }
}
