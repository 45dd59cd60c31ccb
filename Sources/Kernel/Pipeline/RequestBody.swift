import NIOCore

/// A request body, parsed once. The client's bytes are kept so that an unchanged body is
/// forwarded as it came (DESIGN §8); a change through `json` marks it modified.
public struct RequestBody: Sendable {
    public private(set) var raw: ByteBuffer
    public var json: JSON {
        didSet { isModified = true }
    }
    public private(set) var isModified = false

    public init(raw: ByteBuffer, json: JSON) {
        self.raw = raw
        self.json = json
    }

    public static let empty = RequestBody(raw: ByteBuffer(), json: .null)

    /// The bytes to send upstream: the client's own unless something changed the JSON.
    public func bytes(allocator: ByteBufferAllocator) -> ByteBuffer {
        isModified ? json.encoded(using: allocator, sizeHint: raw.readableBytes + 256) : raw
    }
}
