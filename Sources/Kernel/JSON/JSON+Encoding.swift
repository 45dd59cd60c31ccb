import CJansson
import NIOCore

extension JSON {
    static let encodingFlags = sluice_json_encode_flags

    /// The compact encoding, keys in document order.
    public func encoded() -> [UInt8] {
        let size = json_dumpb(pointer, nil, 0, Self.encodingFlags)
        guard size > 0 else { return Array("null".utf8) }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = json_dumpb(pointer, UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self), size, Self.encodingFlags)
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
