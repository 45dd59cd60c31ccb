import NIOCore

/// Protocol Buffers' wire format (https://protobuf.dev/programming-guides/encoding/), the few
/// pieces OTLP's trace messages need. An embedded message is preceded by its length, so an
/// encoder measures everything first (the `…Size` functions), then writes into memory of exactly
/// that size (`encode(size:)`): one allocation, no intermediate object tree as with generated
/// code, and no per-field call into `ByteBuffer` (its bookkeeping per write cost more than the
/// bytes themselves). Every write is checked against the measured size.
struct ProtobufWriter {
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    /// The bytes written so far.
    private(set) var count = 0

    private init(base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// A buffer of `size` bytes written by `body`, which must write exactly that many.
    static func encode(size: Int, allocator: ByteBufferAllocator = ByteBufferAllocator(),
                       _ body: (inout ProtobufWriter) -> Void) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: size)
        guard size > 0 else { return buffer }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var writer = ProtobufWriter(base: raw.baseAddress!, capacity: size)
            body(&writer)
            precondition(writer.count == size, "protobuf: measured \(size) bytes, wrote \(writer.count)")
            return size
        }
        return buffer
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

    /// Room for `bytes` more; past the measured size is a bug in the measuring, never memory
    /// to write into.
    @inline(__always)
    private mutating func reserve(_ bytes: Int) -> Int {
        precondition(count + bytes <= capacity, "protobuf: writing past the measured \(capacity) bytes")
        defer { count += bytes }
        return count
    }

    mutating func varint(_ value: UInt64) {
        if value < 0x80 {  // most tags and lengths: one byte, no size to work out
            base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: reserve(1), as: UInt8.self)
            return
        }
        var value = value
        let offset = reserve(Self.varintSize(value))
        var index = offset
        while value >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: value) | 0x80, toByteOffset: index, as: UInt8.self)
            value >>= 7
            index += 1
        }
        base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: index, as: UInt8.self)
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
        base.storeBytes(of: value.littleEndian, toByteOffset: reserve(8), as: UInt64.self)
    }

    mutating func fixed32Field(_ field: Int, _ value: UInt32) {
        tag(field, .fixed32)
        base.storeBytes(of: value.littleEndian, toByteOffset: reserve(4), as: UInt32.self)
    }

    mutating func stringField(_ field: Int, _ value: String) {
        let length = value.utf8.count
        tag(field, .lengthDelimited)
        varint(UInt64(length))
        let offset = reserve(length)
        let copied: Void? = value.utf8.withContiguousStorageIfAvailable { bytes in
            if let source = bytes.baseAddress { (base + offset).copyMemory(from: source, byteCount: length) }
        }
        if copied == nil {  // a string not stored as UTF-8 (bridged): byte by byte
            for (index, byte) in value.utf8.enumerated() { base.storeBytes(of: byte, toByteOffset: offset + index, as: UInt8.self) }
        }
    }

    /// The header of an embedded message (or of bytes) of `length` bytes; its content follows.
    mutating func lengthDelimitedHeader(_ field: Int, length: Int) {
        tag(field, .lengthDelimited)
        varint(UInt64(length))
    }

    /// A `bytes` field of 8 bytes holding a big-endian integer (a span id).
    mutating func bytesField(_ field: Int, bigEndian value: UInt64) {
        lengthDelimitedHeader(field, length: 8)
        base.storeBytes(of: value.bigEndian, toByteOffset: reserve(8), as: UInt64.self)
    }

    /// A `bytes` field of 16 bytes holding two big-endian integers (a trace id).
    mutating func bytesField(_ field: Int, bigEndian high: UInt64, _ low: UInt64) {
        lengthDelimitedHeader(field, length: 16)
        let offset = reserve(16)
        base.storeBytes(of: high.bigEndian, toByteOffset: offset, as: UInt64.self)
        base.storeBytes(of: low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
    }
}
