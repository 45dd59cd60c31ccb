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

    /// The compact encoding written straight into a new `ByteBuffer`.
    public func encoded(using allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = json_dumpb(pointer, nil, 0, Self.encodingFlags)
        var buffer = allocator.buffer(capacity: max(size, 4))
        guard size > 0 else { buffer.writeString("null"); return buffer }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            json_dumpb(pointer, raw.baseAddress!.assumingMemoryBound(to: CChar.self), size, Self.encodingFlags)
        }
        return buffer
    }
}
