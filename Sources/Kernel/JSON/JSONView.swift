import NIOCore

/// One value of a request body, read where it is: the client's bytes while nothing has built a
/// tree (docs/ARCHITECTURE.md, "A request's path"), otherwise a member of the tree. Reading a
/// `model` or a `stream` flag this way costs the bytes of that value, not a parse of the body.
public struct JSONView: Sendable {
    private enum Storage: Sendable {
        /// The bytes of one value a scan has checked (so they are valid JSON).
        case bytes(ByteBuffer)
        case tree(JSON)
    }

    private let storage: Storage
    /// Where a scanned body's top-level members lie: its members are found without a walk over
    /// the bytes (a 200 KB conversation's `stream` flag costs a look-up, not a skip of its messages).
    private let members: JSONMemberIndex?

    /// The bytes of a value `JSONScanner` checked, with the index of its members when it made one.
    init(scannedBytes: ByteBuffer, members: JSONMemberIndex? = nil) {
        storage = .bytes(scannedBytes)
        self.members = members
    }

    public init(_ json: JSON) {
        storage = .tree(json)
        members = nil
    }

    public var kind: JSON.Kind {
        switch storage {
        case .tree(let json): return json.kind
        case .bytes(let bytes):
            switch bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) {
            case UInt8(ascii: "{"): return .object
            case UInt8(ascii: "["): return .array
            case UInt8(ascii: "\""): return .string
            case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
            case UInt8(ascii: "n"), nil: return .null
            default:
                let isReal = bytes.readableBytesView.contains { $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") }
                return isReal ? .real : .integer
            }
        }
    }

    public var isNull: Bool { kind == .null }
    public var isString: Bool { kind == .string }

    public var string: String? {
        switch storage {
        case .tree(let json): return json.string
        case .bytes(let bytes):
            guard kind == .string else { return nil }
            let inner = bytes.getSlice(at: bytes.readerIndex + 1, length: bytes.readableBytes - 2)!
            guard inner.readableBytesView.contains(UInt8(ascii: "\\")) else { return String(buffer: inner) }
            return inner.withUnsafeReadableBytes(JSONView.unescaped)
        }
    }

    public var bool: Bool? {
        switch storage {
        case .tree(let json): return json.bool
        case .bytes(let bytes):
            switch bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) {
            case UInt8(ascii: "t"): return true
            case UInt8(ascii: "f"): return false
            default: return nil
            }
        }
    }

    /// The integer value; a real with no fractional part counts too, as `JSON.int` has it.
    public var int: Int? {
        switch storage {
        case .tree(let json): return json.int
        case .bytes(let bytes):
            switch kind {
            case .integer: return bytes.withUnsafeReadableBytes(Self.integer)
            case .real:
                guard let value = double, value.rounded() == value else { return nil }
                return Int(exactly: value)
            default: return nil
            }
        }
    }

    /// A JSON integer's text as an `Int` (what `Int(String)` reads, without making the string);
    /// `nil` beyond 64 bits.
    static func integer(_ text: UnsafeRawBufferPointer) -> Int? {
        let negative = text.first == UInt8(ascii: "-")
        var index = negative ? 1 : 0
        guard index < text.count else { return nil }
        var value = 0
        while index < text.count {
            let digit = text[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            // Negative numbers are built downwards, so that Int.min fits.
            let (tens, overTens) = value.multipliedReportingOverflow(by: 10)
            let (next, over) = negative ? tens.subtractingReportingOverflow(Int(digit)) : tens.addingReportingOverflow(Int(digit))
            guard !overTens, !over else { return nil }
            value = next
            index += 1
        }
        return value
    }

    public var double: Double? {
        switch storage {
        case .tree(let json): return json.double
        case .bytes(let bytes):
            guard kind == .integer || kind == .real else { return nil }
            return Double(String(buffer: bytes))
        }
    }

    /// Whether an array or object has no elements (false for anything else).
    public var isEmpty: Bool {
        switch storage {
        case .tree(let json): return (json.isArray || json.isObject) && json.count == 0
        case .bytes(let bytes):
            guard kind == .array || kind == .object else { return false }
            // What follows the opening bracket, whitespace aside, is the closing one.
            let afterOpening = bytes.readableBytesView.dropFirst().first { !JSONSkimmer.isWhitespace($0) }
            return afterOpening == UInt8(ascii: "]") || afterOpening == UInt8(ascii: "}")
        }
    }

    public var isObject: Bool { kind == .object }
    public var isArray: Bool { kind == .array }

    /// The member `key` of an object; `nil` when absent or when this is not an object.
    public subscript(key: String) -> JSONView? {
        switch storage {
        case .tree(let json): return json[key].map(JSONView.init)
        case .bytes(let bytes):
            if let members {
                let found = bytes.withUnsafeReadableBytes { members.find(key, in: $0) }
                return found.map { member(members.members[$0].valueRange, of: bytes) }
            }
            guard kind == .object else { return nil }
            var found: Range<Int>?
            var key = key
            key.withUTF8 { wanted in
                bytes.withUnsafeReadableBytes { raw in
                    JSONSkip.members(of: raw) { name, value in
                        guard JSONSkip.keyMatches(UnsafeRawBufferPointer(rebasing: raw[name]), wanted) else { return true }
                        found = value
                        return false
                    }
                }
            }
            return found.map { member($0, of: bytes) }
        }
    }

    /// The members `keys` of an object (each `nil` when absent), found in one walk over its bytes
    /// (or its index, `forEachMember`) where a subscript per key would walk them once per key.
    public func members(_ keys: [String]) -> [JSONView?] {
        // Not `Array(repeating:count:)`, which copies its `nil` into each element through the
        // value's witnesses.
        var found = [JSONView?](unsafeUninitializedCapacity: keys.count) { buffer, count in
            buffer.initialize(repeating: nil)
            count = keys.count
        }
        forEachMember { key, value in
            // Lengths first: most pairs of a member and a wanted key differ in length.
            for index in keys.indices where keys[index].utf8.count == key.count {
                var wanted = keys[index]
                if wanted.withUTF8({ ByteWord.equal(key, UnsafeRawBufferPointer($0)) }) { found[index] = value() }
            }
        }
        return found
    }

    /// Calls `visit` with each member of an object, its key's UTF-8 (escapes decoded) and its
    /// value (made when `visit` asks for it), in one walk over the members (nothing for anything
    /// else). The front door reads what it checks of every request this way (`RequestFields`),
    /// where a look-up per key would walk the members once per key.
    func forEachMember(_ visit: (UnsafeRawBufferPointer, () -> JSONView) -> Void) {
        switch storage {
        case .tree(let json):
            guard json.isObject else { return }
            for (key, value) in json.members {
                var key = key
                key.withUTF8 { visit(UnsafeRawBufferPointer($0), { JSONView(value) }) }
            }
        case .bytes(let bytes):
            guard kind == .object else { return }
            bytes.withUnsafeReadableBytes { raw in
                func visitMember(key: Range<Int>, escapedKey: String?, value: Range<Int>) {
                    guard var escapedKey else { return visit(UnsafeRawBufferPointer(rebasing: raw[key]), { member(value, of: bytes) }) }
                    escapedKey.withUTF8 { visit(UnsafeRawBufferPointer($0), { member(value, of: bytes) }) }
                }
                if let members {
                    for member in members.members { visitMember(key: member.keyRange, escapedKey: member.escapedKey, value: member.valueRange) }
                    return
                }
                JSONSkip.members(of: raw) { key, value in
                    let written = UnsafeRawBufferPointer(rebasing: raw[key])
                    visitMember(key: key, escapedKey: written.contains(UInt8(ascii: "\\")) ? Self.unescaped(written) : nil, value: value)
                    return true
                }
            }
        }
    }

    private func member(_ range: Range<Int>, of bytes: ByteBuffer) -> JSONView {
        JSONView(scannedBytes: bytes.getSlice(at: bytes.readerIndex + range.lowerBound, length: range.count)!)
    }

    /// The elements of an array (empty for anything else).
    public var elements: [JSONView] {
        switch storage {
        case .tree(let json): return json.elements.map(JSONView.init)
        case .bytes(let bytes):
            guard kind == .array else { return [] }
            var ranges: [Range<Int>] = []
            bytes.withUnsafeReadableBytes { raw in JSONSkip.elements(of: raw) { ranges.append($0) } }
            return ranges.map { JSONView(scannedBytes: bytes.getSlice(at: bytes.readerIndex + $0.lowerBound, length: $0.count)!) }
        }
    }

    /// The element at `index` of an array; `nil` when out of range or not an array.
    public subscript(index: Int) -> JSONView? {
        let elements = elements
        return elements.indices.contains(index) ? elements[index] : nil
    }

    /// The keys of an object, in document order (empty for anything else).
    public var keys: [String] {
        switch storage {
        case .tree(let json): return json.keys
        case .bytes(let bytes):
            guard kind == .object else { return [] }
            var names: [Range<Int>] = []
            if let members {
                names = members.members.map(\.keyRange)
            } else {
                bytes.withUnsafeReadableBytes { raw in JSONSkip.members(of: raw) { name, _ in names.append(name); return true } }
            }
            return names.map { name in
                let slice = bytes.getSlice(at: bytes.readerIndex + name.lowerBound - 1, length: name.count + 2)!
                return JSONView(scannedBytes: slice).string ?? ""
            }
        }
    }

    /// Number of elements of an array or members of an object; 0 otherwise.
    public var count: Int {
        switch storage {
        case .tree(let json): return json.count
        case .bytes(let bytes):
            var count = 0
            switch kind {
            case .array: bytes.withUnsafeReadableBytes { raw in JSONSkip.elements(of: raw) { _ in count += 1 } }
            case .object:
                if let members { return members.members.count }
                bytes.withUnsafeReadableBytes { raw in JSONSkip.members(of: raw) { _, _ in count += 1; return true } }
            default: break
            }
            return count
        }
    }

    /// Characters (Unicode scalars) of text in a content value: a string, or the `text` (and
    /// nested `content`) of its parts.
    public var textCharacterCount: Int {
        if let count = stringScalarCount { return count }
        return elements.reduce(0) { $0 + ($1["text"]?.stringScalarCount ?? 0) + ($1["content"]?.textCharacterCount ?? 0) }
    }

    /// The Unicode scalars of a string value, counted on its bytes: no string is made, and no
    /// grapheme cluster is looked for (what `String.count` does, at many instructions a byte).
    /// For estimates (tokens from characters) over bodies that may be long. `nil` for a value
    /// that is not a string.
    public var stringScalarCount: Int? {
        switch storage {
        case .tree(let json): return json.string?.unicodeScalars.count
        case .bytes(let bytes):
            guard kind == .string else { return nil }
            return bytes.withUnsafeReadableBytes { raw in
                // Between the quotes; the scan has checked every escape, surrogate pairs included.
                var count = 0, index = 1
                let end = raw.count - 1
                while index < end {
                    if index + 8 <= end {  // eight bytes at a time while there is no escape
                        let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                        if ByteWord.has(UInt8(ascii: "\\"), in: word) == 0 {
                            // A continuation byte is 10xxxxxx: its high bit set, the next one clear.
                            let continuations = word & ~(word << 1) & ByteWord.highBits
                            count += 8 - continuations.nonzeroBitCount
                            index += 8
                            continue
                        }
                    }
                    let byte = raw[index]
                    if byte == UInt8(ascii: "\\") {
                        guard raw[index + 1] == UInt8(ascii: "u") else {
                            index += 2
                            count += 1
                            continue
                        }
                        // `\uD83D\uDE00` is one scalar: a high surrogate's escape is followed by its low one's.
                        let isHighSurrogate = raw[index + 2] | 0x20 == UInt8(ascii: "d") && (raw[index + 3] | 0x20) >= UInt8(ascii: "8")
                            && (raw[index + 3] | 0x20) <= UInt8(ascii: "b")
                        index += isHighSurrogate ? 12 : 6
                    } else {
                        index += 1
                        if byte & 0xC0 == 0x80 { continue }  // a continuation byte of the scalar counted
                    }
                    count += 1
                }
                return count
            }
        }
    }

    /// The value as a tree, parsed from its bytes when it is not one already.
    public var json: JSON {
        switch storage {
        case .tree(let json): return json
        case .bytes(let bytes): return (try? JSON.parse(bytes)) ?? .null
        }
    }

    /// A string's content with its escapes decoded (the scan has checked them, surrogate pairs included).
    static func unescaped(_ raw: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var position = 0
        func hex(_ at: Int) -> UInt32 {
            raw[at..<(at + 4)].reduce(0) { value, byte in
                let digit: UInt8 = byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : (byte | 0x20) - UInt8(ascii: "a") + 10
                return value << 4 | UInt32(digit)
            }
        }
        while position < raw.count {
            let byte = raw[position]
            guard byte == UInt8(ascii: "\\"), position + 1 < raw.count else {
                out.append(byte)
                position += 1
                continue
            }
            let letter = raw[position + 1]
            position += 2
            switch letter {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u") where position + 4 <= raw.count:
                var scalar = hex(position)
                position += 4
                if (0xD800...0xDBFF).contains(scalar), position + 6 <= raw.count {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (hex(position + 2) - 0xDC00)
                    position += 6
                }
                out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}")!)
            default: out.append(letter)  // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Walks bytes a `JSONScanner` has checked: no validation, only where values begin and end.
enum JSONSkip {
    /// Calls `body` with each member's key (without quotes) and value range of the object at the
    /// start of `raw`, until it returns false.
    static func members(of raw: UnsafeRawBufferPointer, _ body: (Range<Int>, Range<Int>) -> Bool) {
        var position = whitespace(raw, 1)
        guard position < raw.count, raw[position] != UInt8(ascii: "}") else { return }
        while position < raw.count {
            let keyEnd = string(raw, position)
            let name = (position + 1)..<(keyEnd - 1)
            position = whitespace(raw, keyEnd) + 1  // past the colon
            position = whitespace(raw, position)
            let valueEnd = value(raw, position)
            guard body(name, position..<valueEnd) else { return }
            position = whitespace(raw, valueEnd)
            guard position < raw.count, raw[position] == UInt8(ascii: ",") else { return }
            position = whitespace(raw, position + 1)
        }
    }

    /// Calls `body` with each element's range of the array at the start of `raw`.
    static func elements(of raw: UnsafeRawBufferPointer, _ body: (Range<Int>) -> Void) {
        var position = whitespace(raw, 1)
        guard position < raw.count, raw[position] != UInt8(ascii: "]") else { return }
        while position < raw.count {
            let end = value(raw, position)
            body(position..<end)
            position = whitespace(raw, end)
            guard position < raw.count, raw[position] == UInt8(ascii: ",") else { return }
            position = whitespace(raw, position + 1)
        }
    }

    /// Whether a key as written (maybe with escapes) is `wanted`.
    static func keyMatches(_ written: UnsafeRawBufferPointer, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        guard written.contains(UInt8(ascii: "\\")) else { return ByteWord.equal(written, UnsafeRawBufferPointer(wanted)) }
        var quoted = ByteBuffer(integer: UInt8(ascii: "\""))
        quoted.writeBytes(written)
        quoted.writeInteger(UInt8(ascii: "\""))
        return JSONView(scannedBytes: quoted).string.map { $0.utf8.elementsEqual(wanted) } ?? false
    }

    // Where values end is JSONSkimmer's walk (JSON+Member.swift), started at an offset.

    static func whitespace(_ raw: UnsafeRawBufferPointer, _ start: Int) -> Int {
        var skimmer = JSONSkimmer(bytes: raw, index: start)
        skimmer.skipWhitespace()
        return skimmer.index
    }

    /// The end of the string whose opening quote is at `start`.
    static func string(_ raw: UnsafeRawBufferPointer, _ start: Int) -> Int {
        var skimmer = JSONSkimmer(bytes: raw, index: start)
        _ = skimmer.skipString()
        return skimmer.index
    }

    /// The end of the value that starts at `start`.
    static func value(_ raw: UnsafeRawBufferPointer, _ start: Int) -> Int {
        var skimmer = JSONSkimmer(bytes: raw, index: start)
        _ = skimmer.skipValue()
        return skimmer.index
    }
}
