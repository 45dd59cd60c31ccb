import NIOCore

/// A request body, parsed once. The client's bytes are kept so that an unchanged body is
/// forwarded as it came (docs/ARCHITECTURE.md, "A request's path"); a change through `json` marks it modified.
public struct RequestBody: Sendable {
    public private(set) var raw: ByteBuffer
    public var json: JSON {
        didSet {
            isModified = true
            onlyReplaced = nil
        }
    }
    public private(set) var isModified = false
    /// Set while the one change is a member replaced through `replaceMember`: the bytes sent
    /// upstream are then the client's with that value swapped, not the whole tree encoded again.
    private var onlyReplaced: (key: String, value: JSON)?

    public init(raw: ByteBuffer, json: JSON) {
        self.raw = raw
        self.json = json
    }

    /// A body made by the gateway (a translation, say): its bytes are the JSON's encoding.
    public init(json: JSON) {
        raw = ByteBuffer()
        self.json = json
        isModified = true
    }

    public static let empty = RequestBody(raw: ByteBuffer(), json: .null)

    /// Sets a top-level member, as `json[key] = value` does, more cheaply: a provider renaming
    /// the `model` sends the client's bytes with one value swapped.
    public mutating func replaceMember(_ key: String, with value: JSON) {
        let wasModified = isModified
        json[key] = value
        if !wasModified { onlyReplaced = (key, value) }
    }

    /// The bytes to send upstream: the client's own unless something changed the JSON.
    public func bytes(allocator: ByteBufferAllocator) -> ByteBuffer {
        guard isModified else { return raw }
        // A replaced member absent, repeated or escaped in the client's bytes: encode the tree.
        if let onlyReplaced, case .found(let range) = JSON.valueRange(ofMember: onlyReplaced.key, in: raw) {
            return splice(onlyReplaced.value, over: range, allocator: allocator)
        }
        return json.encoded(using: allocator, sizeHint: raw.readableBytes + 256)
    }

    private func splice(_ value: JSON, over range: Range<Int>, allocator: ByteBufferAllocator) -> ByteBuffer {
        let encodedValue = value.encoded(using: allocator)
        var out = allocator.buffer(capacity: raw.readableBytes - range.count + encodedValue.readableBytes)
        out.writeImmutableBuffer(raw.getSlice(at: raw.readerIndex, length: range.lowerBound)!)
        out.writeImmutableBuffer(encodedValue)
        out.writeImmutableBuffer(raw.getSlice(at: raw.readerIndex + range.upperBound, length: raw.readableBytes - range.upperBound)!)
        return out
    }
}
