import Atomics
import NIOCore

/// A request body: the client's bytes, forwarded as they came unless something changes them
/// (docs/ARCHITECTURE.md, "A request's path"). The front door only scans them (`JSONScanner`):
/// top-level members are read (`member`) and set (`replaceMember`) in the bytes, and a tree is
/// built the first time a plugin or a translation reads `json`. Setting `json` makes the tree
/// the body, encoded again when it is sent.
public struct RequestBody: Sendable {
    public private(set) var raw: ByteBuffer
    private var content: Content
    /// Whether the bytes to send are no longer the client's.
    public private(set) var isModified = false

    private enum Content: Sendable {
        /// `raw` is the body; its top-level members are indexed, and its tree is built when asked.
        case scanned(JSONMemberIndex, LazyTree)
        /// The tree is the body (`raw` is what the client sent before it changed).
        case tree(JSON)
        /// Not JSON the gateway reads (a plugin route's body, or none).
        case opaque
    }

    /// A body the front door has scanned.
    public init(raw: ByteBuffer, scan: JSONScan) {
        self.raw = raw
        content = scan.members.map { .scanned($0, LazyTree()) } ?? .opaque
    }

    /// A body whose tree is already built from `raw`.
    public init(raw: ByteBuffer, json: JSON) {
        self.raw = raw
        if let members = (try? JSONScanner.scan(raw))?.members {
            content = .scanned(members, LazyTree(json))
        } else {
            content = json.isNull ? .opaque : .tree(json)
        }
    }

    /// A body made by the gateway (a translation, say): its bytes are the JSON's encoding.
    public init(json: JSON) {
        raw = ByteBuffer()
        content = .tree(json)
        isModified = true
    }

    /// Bytes the gateway does not read as JSON.
    public init(opaque raw: ByteBuffer) {
        self.raw = raw
        content = .opaque
    }

    public static let empty = RequestBody(opaque: ByteBuffer())

    /// The whole body as a tree, built on first use from the client's bytes.
    public var json: JSON {
        get {
            switch content {
            case .scanned(_, let lazy): lazy.tree(of: raw)
            case .tree(let json): json
            case .opaque: .null
            }
        }
        set {
            content = .tree(newValue)
            isModified = true
        }
    }

    /// Whether a tree of the body exists (the front door and a provider that only renames the model never build one).
    public var isParsed: Bool {
        switch content {
        case .scanned(_, let lazy): lazy.isBuilt
        case .tree: true
        case .opaque: false
        }
    }

    /// The whole body to read without building a tree: the client's bytes while nothing built one.
    public var view: JSONView {
        switch content {
        case .scanned(let index, let lazy): lazy.built.map(JSONView.init) ?? JSONView(scannedBytes: raw, members: index)
        case .tree(let json): JSONView(json)
        case .opaque: JSONView(.null)
        }
    }

    /// A top-level member, read from the bytes while no tree is the body.
    public func member(_ key: String) -> JSONView? { view[key] }

    /// Sets (or with `nil` removes) a top-level member, as `json[key] = value` does, by splicing
    /// the client's bytes while no tree is the body: renaming the `model` of a 200 KB conversation
    /// copies its bytes once and parses none of them.
    public mutating func replaceMember(_ key: String, with value: JSON?) {
        replaceMember(key, encoded: { value?.encoded(using: ByteBufferAllocator(), sizeHint: 64) }, value: { value })
    }

    /// Sets a top-level member to a string, as `replaceMember(_:with:)` does with `JSON(value)`;
    /// while no tree is the body, the string is written into the bytes without making a JSON
    /// value (a provider renames the `model` of every request).
    public mutating func replaceMember(_ key: String, with value: String) {
        replaceMember(key, encoded: {
            var encoded = ByteBufferAllocator().buffer(capacity: value.utf8.count + 2)
            encoded.writeJSONString(value)
            return encoded
        }, value: { JSON(value) })
    }

    /// `encoded` is the value's bytes to splice in (`nil` removes the member); `value` the same
    /// value as a tree, made only when a tree is kept.
    private mutating func replaceMember(_ key: String, encoded: () -> ByteBuffer?, value: () -> JSON?) {
        switch content {
        case .scanned(let index, let lazy):
            let (bytes, members) = Self.splice(raw, index: index, key: key, value: encoded())
            raw = bytes
            // A tree built already is kept, changed the same way (a shallow copy of its top level).
            var tree = lazy.built
            tree?[key] = value()  // not evaluated without a tree
            content = .scanned(members, tree.map(LazyTree.init) ?? LazyTree())
            isModified = true
        case .tree(var json):
            content = .opaque  // lets `json` be uniquely referenced while it changes
            json[key] = value()
            content = .tree(json)
        case .opaque:
            break
        }
    }

    /// The bytes to send upstream.
    public func bytes(allocator: ByteBufferAllocator) -> ByteBuffer {
        switch content {
        case .scanned, .opaque: raw
        case .tree(let json): json.encoded(using: allocator, sizeHint: raw.readableBytes + 256)
        }
    }

    private static func splice(_ raw: ByteBuffer, index: JSONMemberIndex, key: String, value: ByteBuffer?)
        -> (ByteBuffer, JSONMemberIndex) {
        let found = raw.withUnsafeReadableBytes { index.find(key, in: $0) }
        var members = index.members
        let replaced: Range<Int>
        var insertion = ByteBuffer()
        var added: JSONMemberIndex.Member?
        switch (found, value) {
        case (nil, nil):
            return (raw, index)
        case (let found?, let value?):
            replaced = members[found].valueRange
            insertion = value
            members[found].valueRange = replaced.lowerBound..<(replaced.lowerBound + insertion.readableBytes)
        case (let found?, nil):
            // With the comma that separates it from a neighbour.
            if found + 1 < members.count {
                replaced = members[found].start..<members[found + 1].start
            } else if found > 0 {
                replaced = members[found - 1].valueRange.upperBound..<members[found].valueRange.upperBound
            } else {
                replaced = members[found].start..<members[found].valueRange.upperBound
            }
            members.remove(at: found)
        case (nil, let value?):
            let at = members.last?.valueRange.upperBound ?? index.closingBrace
            replaced = at..<at
            if !members.isEmpty { insertion.writeStaticString(",") }
            let start = at + insertion.readableBytes
            let keyLength = insertion.writeJSONString(key)
            let keyRange = (start + 1)..<(at + insertion.readableBytes - 1)
            insertion.writeStaticString(":")
            let valueStart = at + insertion.readableBytes
            insertion.writeImmutableBuffer(value)
            let escaped = keyLength != key.utf8.count + 2
            added = JSONMemberIndex.Member(keyRange: keyRange, escapedKey: escaped ? key : nil, start: start,
                                           valueRange: valueStart..<(at + insertion.readableBytes))
        }
        let delta = insertion.readableBytes - replaced.count
        for position in members.indices where members[position].start >= replaced.upperBound {
            members[position].start += delta
            members[position].keyRange = (members[position].keyRange.lowerBound + delta)..<(members[position].keyRange.upperBound + delta)
            members[position].valueRange = (members[position].valueRange.lowerBound + delta)..<(members[position].valueRange.upperBound + delta)
        }
        if let added { members.append(added) }

        var out = ByteBufferAllocator().buffer(capacity: raw.readableBytes + delta)
        out.writeImmutableBuffer(raw.getSlice(at: raw.readerIndex, length: replaced.lowerBound)!)
        out.writeImmutableBuffer(insertion)
        out.writeImmutableBuffer(raw.getSlice(at: raw.readerIndex + replaced.upperBound, length: raw.readableBytes - replaced.upperBound)!)
        return (out, JSONMemberIndex(members: members, closingBrace: index.closingBrace + delta))
    }
}

/// A body's tree, built at most once however many copies of the body share it.
final class LazyTree: Sendable {
    private final class Box: Sendable {
        let json: JSON
        init(_ json: JSON) { self.json = json }
    }

    private let box = ManagedAtomicLazyReference<Box>()

    init() {}
    init(_ json: JSON) { _ = box.storeIfNilThenLoad(Box(json)) }

    var isBuilt: Bool { box.load() != nil }
    var built: JSON? { box.load()?.json }

    /// The tree of `raw`, which a scan has found to be valid JSON.
    func tree(of raw: ByteBuffer) -> JSON {
        if let built = box.load() { return built.json }
        return box.storeIfNilThenLoad(Box((try? JSON.parse(raw)) ?? .object())).json
    }
}
