import CJansson
import NIOCore

extension JSON {
    static let encodingFlags = sluice_json_encode_flags

    /// The compact encoding, keys in document order (or sorted, for a canonical form to hash).
    public func encoded(sortedKeys: Bool = false) -> [UInt8] {
        let flags = sortedKeys ? sluice_json_encode_sorted_flags : Self.encodingFlags
        let size = json_dumpb(pointer, nil, 0, flags)
        guard size > 0 else { return Array("null".utf8) }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = json_dumpb(pointer, UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self), size, flags)
        }
    }

    /// The compact encoding written straight into a new `ByteBuffer`. jansson writes it in one
    /// pass when `sizeHint` is enough (it measures first otherwise, which costs a second pass).
    public func encoded(using allocator: ByteBufferAllocator, sizeHint: Int = 1024) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: max(sizeHint, 16))
        var size = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { raw in
            size = json_dumpb(pointer, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count, Self.encodingFlags)
            return size <= raw.count ? size : 0
        }
        if size == 0 {
            buffer.writeString("null")
        } else if buffer.readableBytes == 0 {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                json_dumpb(pointer, raw.baseAddress!.assumingMemoryBound(to: CChar.self), size, Self.encodingFlags)
            }
        }
        return buffer
    }
}
