import NIOCore

/// Protocol Buffers' wire format (https://protobuf.dev/programming-guides/encoding/), the few
/// pieces OTLP's trace messages need, written straight into a `ByteBuffer`. An embedded message
/// is preceded by its length, so encoders measure a message (the `…Size` functions) before
/// writing it; there is no intermediate object tree as with generated code.
struct ProtobufWriter {
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    var buffer: ByteBuffer

    init(buffer: ByteBuffer) {
        self.buffer = buffer
    }

    // MARK: Sizes

    static func varintSize(_ value: UInt64) -> Int {
        // One byte per 7 significant bits; zero takes one byte.
        (63 - (value | 1).leadingZeroBitCount) / 7 + 1
    }

    static func tagSize(_ field: Int) -> Int {
        varintSize(UInt64(field) << 3)
    }

    /// A length-delimited field of `length` bytes: tag, length, bytes.
    static func lengthDelimitedSize(_ field: Int, _ length: Int) -> Int {
        tagSize(field) + varintSize(UInt64(length)) + length
    }

    static func stringSize(_ field: Int, _ value: String) -> Int {
        lengthDelimitedSize(field, value.utf8.count)
    }

    static func varintFieldSize(_ field: Int, _ value: UInt64) -> Int {
        tagSize(field) + varintSize(value)
    }

    static func fixed64FieldSize(_ field: Int) -> Int { tagSize(field) + 8 }

    static func fixed32FieldSize(_ field: Int) -> Int { tagSize(field) + 4 }

    // MARK: Writing

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(truncatingIfNeeded: value))
    }

    mutating func tag(_ field: Int, _ type: WireType) {
        varint(UInt64(field) << 3 | type.rawValue)
    }

    mutating func varintField(_ field: Int, _ value: UInt64) {
        tag(field, .varint)
        varint(value)
    }

    mutating func fixed64Field(_ field: Int, _ value: UInt64) {
        tag(field, .fixed64)
        buffer.writeInteger(value, endianness: .little)
    }

    mutating func fixed32Field(_ field: Int, _ value: UInt32) {
        tag(field, .fixed32)
        buffer.writeInteger(value, endianness: .little)
    }

    mutating func stringField(_ field: Int, _ value: String) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.utf8.count))
        buffer.writeString(value)
    }

    /// The header of an embedded message (or of bytes) of `length` bytes; its content follows.
    mutating func lengthDelimitedHeader(_ field: Int, length: Int) {
        tag(field, .lengthDelimited)
        varint(UInt64(length))
    }

    /// A `bytes` field of 8 bytes holding a big-endian integer (a span id).
    mutating func bytesField(_ field: Int, bigEndian value: UInt64) {
        lengthDelimitedHeader(field, length: 8)
        buffer.writeInteger(value, endianness: .big)
    }

    /// A `bytes` field of 16 bytes holding two big-endian integers (a trace id).
    mutating func bytesField(_ field: Int, bigEndian high: UInt64, _ low: UInt64) {
        lengthDelimitedHeader(field, length: 16)
        buffer.writeInteger(high, endianness: .big)
        buffer.writeInteger(low, endianness: .big)
    }
}
