import CJansson
import NIOCore

/// Checks a client's request body as jansson would parse it, without building a tree, and
/// indexes its top-level members (docs/ARCHITECTURE.md, "A request's path"): the front door reads
/// `model` and `stream` from the index and forwards the bytes, and a tree is built only when a
/// plugin asks for one.
///
/// Refused, as `JSON.parseRequest` refuses them: anything that is not JSON (with line and column),
/// invalid UTF-8, lone surrogate escapes, integers outside 64 bits, reals that overflow, nesting
/// deeper than jansson's 2048 levels, and duplicate keys in any object. The tree jansson would
/// build is estimated from above as the scan goes; a body whose estimate passes `memoryBudget`
/// is refused with `exceededBudget`, before any of it is allocated.
public enum JSONScanner {
    /// Containers may nest this deep (jansson's `JSON_PARSER_MAX_DEPTH`).
    static let maxDepth = 2048

    /// Scans a whole document; its top-level members are indexed when it is an object.
    public static func scan(_ buffer: ByteBuffer, memoryBudget: Int = .max) throws(JSONParseError) -> JSONScan {
        let result = buffer.withUnsafeReadableBytes { bytes -> Result<JSONScan, JSONParseError> in
            var scanner = Scanner(bytes: bytes, budget: memoryBudget)
            do throws(Scanner.Failure) {
                return .success(try scanner.document())
            } catch {
                return .failure(error.report(in: bytes))
            }
        }
        return try result.get()
    }
}

/// What a scan found.
public struct JSONScan: Sendable {
    /// The kind of the top-level value.
    public var kind: JSON.Kind
    /// The top-level members, when the document is an object.
    public var members: JSONMemberIndex?
    /// An upper estimate of what jansson would allocate for the tree, in bytes.
    public var estimatedTreeBytes: Int
}

/// Where each top-level member of an object's bytes lies (offsets from the buffer's reader index).
public struct JSONMemberIndex: Sendable {
    struct Member: Sendable {
        /// The key as written, without its quotes.
        var keyRange: Range<Int>
        /// The key decoded, when it is written with escapes (otherwise its bytes are the key).
        var escapedKey: String?
        /// From the key's opening quote to the value's end.
        var start: Int
        var valueRange: Range<Int>
    }

    var members: [Member]
    /// The offset of the object's closing brace.
    var closingBrace: Int

    func find(_ key: String, in bytes: UnsafeRawBufferPointer) -> Int? {
        var key = key
        return key.withUTF8 { wanted in members.firstIndex { $0.hasKey(wanted, in: bytes) } }
    }
}

extension JSONMemberIndex.Member {
    func hasKey(_ wanted: UnsafeBufferPointer<UInt8>, in bytes: UnsafeRawBufferPointer) -> Bool {
        if let escapedKey { return escapedKey.utf8.elementsEqual(wanted) }
        return ByteWord.equal(UnsafeRawBufferPointer(rebasing: bytes[keyRange]), UnsafeRawBufferPointer(wanted))
    }
}

private struct Scanner {
    /// A failure at a byte offset; its line and column are worked out only when reported.
    struct Failure: Error {
        var offset: Int
        var message: String
        var exceededBudget = false

        func report(in bytes: UnsafeRawBufferPointer) -> JSONParseError {
            let upTo = UnsafeRawBufferPointer(rebasing: bytes[..<min(offset, bytes.count)])
            var line = 1, lineStart = 0
            for (index, byte) in upTo.enumerated() where byte == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
            }
            // Columns count characters, as jansson's do: continuation bytes are not counted.
            let column = 1 + UnsafeRawBufferPointer(rebasing: upTo[lineStart...]).reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
            var error = JSONParseError(line: line, column: column, message: message)
            error.exceededBudget = exceededBudget
            return error
        }
    }

    /// One open container.
    struct Frame {
        var isObject: Bool
        var start: Int
        var count = 0
        /// Where this object's keys begin in `keys`.
        var keysStart: Int
        /// Hashes of this object's keys, once it has more than a few (before that, a linear search is cheaper).
        var hashes: Set<UInt64>? = nil
    }

    /// A key of an open object: its decoded bytes are at `start` in the input, or in `decodedKeys`.
    struct Key {
        var hash: UInt64
        var start: Int
        var count: Int
        var decoded: Bool
    }

    // Estimated jansson allocations (json_t and its payload, hash-table and array growth), checked
    // against jansson's own in JSONScannerTests. Its lexer's string buffer doubles up to the longest
    // string, and every doubling is a new allocation: four times that string, at most.
    static let lexerCost = 64, objectCost = 256, memberCost = 128, arrayCost = 128, elementCost = 24, stringCost = 48, numberCost = 32
    static let lexerBufferFactor = 4
    static let linearKeyLimit = 12

    let bytes: UnsafeRawBufferPointer
    let budget: Int
    var position = 0
    var cost = Scanner.lexerCost
    var longestString = 0
    /// The estimate so far.
    var treeBytes: Int { cost + Self.lexerBufferFactor * longestString }
    var stack: [Frame] = []
    var keys: [Key] = []
    var decodedKeys: [UInt8] = []
    var index: [JSONMemberIndex.Member] = []

    init(bytes: UnsafeRawBufferPointer, budget: Int) {
        self.bytes = bytes
        self.budget = budget
        // Room for a usual request up front: grown from empty, each array was reallocated several times.
        stack.reserveCapacity(8)
        keys.reserveCapacity(32)
        index.reserveCapacity(16)
    }

    mutating func document() throws(Failure) -> JSONScan {
        skipWhitespace()
        let kind = try value()
        skipWhitespace()
        guard position == bytes.count else { throw Failure(offset: position, message: "end of file expected") }
        let members = kind == .object ? JSONMemberIndex(members: index, closingBrace: bytes.count - 1 - trailingWhitespace()) : nil
        guard treeBytes <= budget else { throw Failure(offset: position, message: "out of memory budget", exceededBudget: true) }
        return JSONScan(kind: kind, members: members, estimatedTreeBytes: treeBytes)
    }

    private func trailingWhitespace() -> Int {
        var count = 0
        while count < bytes.count, JSONSkimmer.isWhitespace(bytes[bytes.count - 1 - count]) { count += 1 }
        return count
    }

    /// Scans one value and everything in it, iteratively (the depth is bounded by `maxDepth`, not the stack).
    private mutating func value() throws(Failure) -> JSON.Kind {
        var topKind = JSON.Kind.null
        var memberStart = 0, keyRange = 0..<0, escapedKey: String? = nil
        while true {
            // At the start of a value.
            guard position < bytes.count else { throw Failure(offset: position, message: "unexpected end of input") }
            let valueStart = position
            var kind: JSON.Kind
            var isOpen = false
            switch bytes[position] {
            case UInt8(ascii: "{"):
                try open(isObject: true)
                kind = .object
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    stack.removeLast()
                } else {
                    isOpen = true
                }
            case UInt8(ascii: "["):
                try open(isObject: false)
                kind = .array
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    stack.removeLast()
                } else {
                    isOpen = true
                }
            case UInt8(ascii: "\""):
                let length = try string(isKey: false).decodedCount
                cost += Self.stringCost + length
                kind = .string
            case UInt8(ascii: "t"): try literal("true"); kind = .bool
            case UInt8(ascii: "f"): try literal("false"); kind = .bool
            case UInt8(ascii: "n"): try literal("null"); kind = .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                kind = try number()
                cost += Self.numberCost
            default:
                throw Failure(offset: position, message: "unexpected character \(Self.describe(bytes[position])); expected a value")
            }
            if stack.isEmpty && !isOpen { return kind }
            if isOpen {
                if stack.count == 1 { topKind = kind }
                if kind == .object {
                    try key(depthOne: stack.count == 1, memberStart: &memberStart, keyRange: &keyRange, escapedKey: &escapedKey)
                }
                continue
            }
            // A value is complete: close containers as far as they end, then move to the next value.
            var end = position
            var completedStart = valueStart
            while true {
                if stack.count == 1, stack[0].isObject, completedStart != stack[0].start {
                    index.append(JSONMemberIndex.Member(keyRange: keyRange, escapedKey: escapedKey, start: memberStart,
                                                        valueRange: completedStart..<end))
                }
                guard treeBytes <= budget else {
                    throw Failure(offset: position, message: "out of memory budget", exceededBudget: true)
                }
                skipWhitespace()
                guard position < bytes.count else { throw Failure(offset: position, message: "unexpected end of input") }
                let isObject = stack[stack.count - 1].isObject
                stack[stack.count - 1].count += 1
                cost += isObject ? 0 : Self.elementCost
                let byte = bytes[position]
                if byte == UInt8(ascii: ",") {
                    position += 1
                    skipWhitespace()
                    if isObject {
                        try key(depthOne: stack.count == 1, memberStart: &memberStart, keyRange: &keyRange, escapedKey: &escapedKey)
                    }
                    break
                }
                guard byte == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else {
                    throw Failure(offset: position, message: "unexpected character \(Self.describe(byte)); expected ',' or '\(isObject ? "}" : "]")'")
                }
                position += 1
                let frame = stack.removeLast()
                if frame.isObject {
                    keys.removeSubrange(frame.keysStart...)
                    if keys.isEmpty { decodedKeys.removeAll(keepingCapacity: true) }
                }
                if stack.isEmpty { return topKind }
                end = position
                completedStart = frame.start
            }
        }
    }

    private mutating func open(isObject: Bool) throws(Failure) {
        guard stack.count < JSONScanner.maxDepth else { throw Failure(offset: position, message: "maximum parsing depth reached") }
        stack.append(Frame(isObject: isObject, start: position, keysStart: keys.count))
        cost += isObject ? Self.objectCost : Self.arrayCost
        position += 1
    }

    /// A member's key and its colon, leaving the position at the value.
    private mutating func key(depthOne: Bool, memberStart: inout Int, keyRange: inout Range<Int>, escapedKey: inout String?) throws(Failure) {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
            throw Failure(offset: position, message: position < bytes.count ? "string or '}' expected" : "unexpected end of input")
        }
        let keyStart = position
        let scanned = try string(isKey: true)
        cost += Self.memberCost + scanned.decodedCount
        let range = (keyStart + 1)..<(position - 1)
        try checkUnique(scanned.key, at: keyStart)
        if depthOne {
            memberStart = keyStart
            keyRange = range
            escapedKey = scanned.key.decoded
                ? String(decoding: decodedKeys[scanned.key.start..<(scanned.key.start + scanned.key.count)], as: UTF8.self) : nil
        }
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
            throw Failure(offset: position, message: "':' expected after an object key")
        }
        position += 1
        skipWhitespace()
    }

    private func withKeyBytes<R>(_ key: Key, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if key.decoded {
            return decodedKeys.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[key.start..<(key.start + key.count)])) }
        }
        return body(UnsafeRawBufferPointer(rebasing: bytes[key.start..<(key.start + key.count)]))
    }

    private func sameKey(_ a: Key, _ b: Key) -> Bool {
        guard a.hash == b.hash, a.count == b.count else { return false }
        return withKeyBytes(a) { first in withKeyBytes(b) { second in ByteWord.equal(first, second) } }
    }

    private mutating func checkUnique(_ key: Key, at offset: Int) throws(Failure) {
        let frameIndex = stack.count - 1
        let first = stack[frameIndex].keysStart
        var seen = false
        if var hashes = stack[frameIndex].hashes {
            stack[frameIndex].hashes = nil  // keeps the set uniquely referenced while it grows
            if !hashes.insert(key.hash).inserted { seen = keys[first...].contains { sameKey($0, key) } }
            stack[frameIndex].hashes = hashes
        } else {
            seen = keys[first...].contains { sameKey($0, key) }
            if keys.count - first >= Self.linearKeyLimit {
                var hashes = Set(keys[first...].map(\.hash))
                hashes.insert(key.hash)
                stack[frameIndex].hashes = hashes
            }
        }
        guard !seen else { throw Failure(offset: offset, message: "duplicate object key") }
        keys.append(key)
    }

    /// Scans a string starting at its opening quote; its escapes and UTF-8 are checked. A key's
    /// decoded bytes are copied to `decodedKeys` when escapes make them differ from the input, and
    /// hashed once the key ends.
    private mutating func string(isKey: Bool) throws(Failure) -> (decodedCount: Int, key: Key) {
        position += 1
        let start = position
        var decodedCount = 0
        var hasEscapes = false
        let decodedStart = decodedKeys.count
        while true {
            let plainStart = position
            skipPlainASCII(&decodedCount)
            if isKey && hasEscapes { decodedKeys.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[plainStart..<position])) }
            guard position < bytes.count else { throw Failure(offset: start - 1, message: "unterminated string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { break }
            if byte < 0x20 { throw Failure(offset: position, message: "control character \(Self.describe(byte)) in a string") }
            if byte == UInt8(ascii: "\\") {
                if isKey && !hasEscapes { decodedKeys.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<position])) }
                hasEscapes = true
                let scalar = try escape()
                var utf8 = UTF8.encode(Unicode.Scalar(scalar)!)!.makeIterator()
                while let byte = utf8.next() {
                    decodedCount += 1
                    if isKey { decodedKeys.append(byte) }
                }
                continue
            }
            let length = byte < 0x80 ? 1 : try utf8Sequence()
            if isKey && hasEscapes { decodedKeys.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)])) }
            position += length
            decodedCount += length
        }
        let end = position
        position += 1
        longestString = max(longestString, decodedCount)
        guard isKey else { return (decodedCount, Key(hash: 0, start: start, count: end - start, decoded: false)) }
        return hasEscapes
            ? (decodedCount, Key(hash: decodedKeys.withUnsafeBytes { Self.hash(UnsafeRawBufferPointer(rebasing: $0[decodedStart...])) },
                                 start: decodedStart, count: decodedKeys.count - decodedStart, decoded: true))
            : (decodedCount, Key(hash: Self.hash(UnsafeRawBufferPointer(rebasing: bytes[start..<end])), start: start, count: end - start, decoded: false))
    }

    /// FNV-1a of a key's decoded bytes: the same key hashes the same however it is escaped.
    private static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    /// Skips eight bytes at a time while none ends the string or needs a closer look (a quote, a
    /// backslash, a control character or a non-ASCII byte): most of a conversation's text. Stops
    /// at the first byte that does.
    private mutating func skipPlainASCII(_ decodedCount: inout Int) {
        let start = position
        while position + 8 <= bytes.count {
            let word = ByteWord.load(bytes.baseAddress!, at: position)
            let special = ByteWord.has(UInt8(ascii: "\""), in: word) | ByteWord.has(UInt8(ascii: "\\"), in: word)
                | ByteWord.hasControlOrNonASCII(word)
            guard special == 0 else {
                position += ByteWord.firstMarked(special)
                break
            }
            position += 8
        }
        decodedCount += position - start
    }

    /// The length of the valid UTF-8 sequence at the position (its first byte is not ASCII).
    private func utf8Sequence() throws(Failure) -> Int {
        let lead = bytes[position]
        let length: Int, low: UInt8, high: UInt8  // the bounds of the second byte, which rule out overlong forms and surrogates
        switch lead {
        case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
        case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, low, high) = (3, 0x80, 0xBF)
        case 0xED: (length, low, high) = (3, 0x80, 0x9F)
        case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
        case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
        case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
        default: throw Failure(offset: position, message: "invalid UTF-8")
        }
        guard position + length <= bytes.count else { throw Failure(offset: position, message: "invalid UTF-8") }
        let second = bytes[position + 1]
        guard second >= low, second <= high else { throw Failure(offset: position, message: "invalid UTF-8") }
        for offset in 2..<max(2, length) where bytes[position + offset] & 0xC0 != 0x80 {
            throw Failure(offset: position, message: "invalid UTF-8")
        }
        return length
    }

    /// The character an escape at the position (its backslash) stands for.
    private mutating func escape() throws(Failure) -> UInt32 {
        let at = position
        guard position + 1 < bytes.count else { throw Failure(offset: at, message: "unterminated string") }
        let letter = bytes[position + 1]
        position += 2
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): return UInt32(letter)
        case UInt8(ascii: "b"): return 0x08
        case UInt8(ascii: "f"): return 0x0C
        case UInt8(ascii: "n"): return 0x0A
        case UInt8(ascii: "r"): return 0x0D
        case UInt8(ascii: "t"): return 0x09
        case UInt8(ascii: "u"):
            let scalar = try hex4(at: at)
            if (0xD800...0xDBFF).contains(scalar) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                    throw Failure(offset: at, message: "invalid Unicode escape: a high surrogate without its low one")
                }
                position += 2
                let low = try hex4(at: at)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw Failure(offset: at, message: "invalid Unicode escape: a high surrogate without its low one")
                }
                return 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard !(0xDC00...0xDFFF).contains(scalar) else {
                throw Failure(offset: at, message: "invalid Unicode escape: a low surrogate alone")
            }
            return scalar
        default:
            throw Failure(offset: at, message: "invalid escape \\\(Self.describe(letter))")
        }
    }

    private mutating func hex4(at escapeStart: Int) throws(Failure) -> UInt32 {
        guard position + 4 <= bytes.count else { throw Failure(offset: escapeStart, message: "invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Failure(offset: escapeStart, message: "invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count,
              UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
                .elementsEqual(UnsafeRawBufferPointer(start: word.utf8Start, count: count)) else {
            throw Failure(offset: position, message: "invalid token; expected a value")
        }
        position += count
    }

    /// A number, by JSON's grammar; integers must fit 64 bits and reals must be finite, as jansson requires.
    private mutating func number() throws(Failure) -> JSON.Kind {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        guard digits() > 0 else { throw Failure(offset: start, message: "invalid number") }
        if bytes[integerStart] == UInt8(ascii: "0"), position - integerStart > 1 {
            throw Failure(offset: start, message: "invalid number: leading zero")
        }
        var isReal = false
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            isReal = true
            guard digits() > 0 else { throw Failure(offset: start, message: "invalid number") }
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            isReal = true
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw Failure(offset: start, message: "invalid number") }
        }
        let text = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
        if isReal {
            // Only an exponent or a very long integer part can overflow a double.
            let exponentOrLong = text.contains { $0 | 0x20 == UInt8(ascii: "e") } || position - integerStart > 300
            if exponentOrLong, let parsed = Double(String(decoding: text, as: UTF8.self)), !parsed.isFinite {
                throw Failure(offset: start, message: "real number overflow")
            }
            return .real
        }
        if position - integerStart >= 19, Int64(String(decoding: text, as: UTF8.self)) == nil {
            throw Failure(offset: start, message: bytes[start] == UInt8(ascii: "-") ? "too big negative integer" : "too big integer")
        }
        return .integer
    }

    private mutating func digits() -> Int {
        let start = position
        while position < bytes.count, bytes[position] &- UInt8(ascii: "0") < 10 { position += 1 }
        return position - start
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, JSONSkimmer.isWhitespace(bytes[position]) { position += 1 }
    }

    static func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(byte, radix: 16, uppercase: true))"
    }
}
