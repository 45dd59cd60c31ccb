import CJansson
import NIOCore

extension JSONView {
    /// One member of the object a document holds, read where it lies: as `JSON.member`, but its
    /// bytes are checked (`JSONScanner`) rather than built into a tree. An answer's `usage` is
    /// read this way: a tree of a few numbers costs jansson's parser set-up and an allocation per
    /// value.
    public static func member(_ key: String, in buffer: ByteBuffer) -> JSONView? {
        switch JSON.valueRange(ofMember: key, in: buffer) {
        case .found(let range):
            let bytes = buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)!
            guard let scan = try? JSONScanner.scan(bytes) else { return nil }
            return JSONView(scannedBytes: bytes, members: scan.members)
        case .absent: return nil
        case .unsure: return JSON.member(key, in: buffer).map(JSONView.init)
        }
    }
}

extension JSON {
    /// One member of the object a document holds, parsed alone: the rest of the document is
    /// skimmed, never built. Reading an answer's `usage` this way costs a scan of its bytes instead
    /// of a tree of every value in it. For a well-formed document it agrees with
    /// `(try? JSON.parse(buffer))?[key]`: `nil` when the document is not an object or has no such
    /// member; duplicate keys keep the last.
    public static func member(_ key: String, in buffer: ByteBuffer) -> JSON? {
        switch valueRange(ofMember: key, in: buffer) {
        case .found(let range): return try? JSON.parse(buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)!)
        case .absent: return nil
        case .unsure: return (try? JSON.parse(buffer))?[key]  // let jansson read it
        }
    }

    /// Where the value of the top-level member `key` lies in a buffer's readable bytes.
    static func valueRange(ofMember key: String, in buffer: ByteBuffer) -> JSONSkimmer.Outcome {
        buffer.withUnsafeReadableBytes { bytes in
            var skimmer = JSONSkimmer(bytes: bytes)
            return skimmer.valueRange(ofMember: key)
        }
    }
}

/// Walks a document's top-level object without building values.
struct JSONSkimmer {
    enum Outcome {
        /// The member is there once, and its value is at these offsets.
        case found(Range<Int>)
        /// The document is not a well-formed object, or has no such member.
        case absent
        /// The member is there more than once, or a key is written with escapes (bytes cannot tell).
        case unsure
    }

    let bytes: UnsafeRawBufferPointer
    var index = 0

    /// Where the value of the top-level member `key` lies.
    mutating func valueRange(ofMember key: String) -> Outcome {
        var key = key
        return key.withUTF8 { valueRange(ofMember: UnsafeRawBufferPointer($0)) }
    }

    private mutating func valueRange(ofMember key: UnsafeRawBufferPointer) -> Outcome {
        var found: Range<Int>?
        var unsure = false
        skipWhitespace()
        guard take(UInt8(ascii: "{")) else { return .absent }
        skipWhitespace()
        if !take(UInt8(ascii: "}")) {
            while true {
                skipWhitespace()
                guard let name = skipString() else { return .absent }
                let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[name])
                if nameBytes.contains(UInt8(ascii: "\\")) { unsure = true }
                skipWhitespace()
                guard take(UInt8(ascii: ":")) else { return .absent }
                skipWhitespace()
                let start = index
                guard skipValue() else { return .absent }
                if ByteWord.equal(nameBytes, key) {
                    if found != nil { unsure = true }
                    found = start..<index
                }
                skipWhitespace()
                if take(UInt8(ascii: ",")) { continue }
                guard take(UInt8(ascii: "}")) else { return .absent }
                break
            }
        }
        skipWhitespace()
        guard index == bytes.count else { return .absent }
        if unsure { return .unsure }
        return found.map { .found($0) } ?? .absent
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func isDelimiter(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") || isWhitespace(byte)
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func skipWhitespace() {
        while index < bytes.count, Self.isWhitespace(bytes[index]) { index += 1 }
    }

    /// Skips a string; returns the range of its contents (escapes left as written).
    mutating func skipString() -> Range<Int>? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while true {
            // Only a quote or a backslash matters here (a scan has checked the rest, or jansson will).
            while index + 8 <= bytes.count {
                let word = ByteWord.load(bytes.baseAddress!, at: index)
                let marks = ByteWord.has(UInt8(ascii: "\""), in: word) | ByteWord.has(UInt8(ascii: "\\"), in: word)
                guard marks == 0 else {
                    index += ByteWord.firstMarked(marks)
                    break
                }
                index += 8
            }
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""):
                index += 1
                return start..<(index - 1)
            default: index += 1
            }
        }
    }

    /// Skips a value: strings and brackets are matched, scalars run to the next delimiter.
    /// jansson reads the one value that matters; the others need only be found, not checked.
    mutating func skipValue() -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return skipString() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard skipString() != nil else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                default: break
                }
                index += 1
                if depth == 0 { return true }
            }
            return false
        default:
            let start = index
            while index < bytes.count, !Self.isDelimiter(bytes[index]) { index += 1 }
            return index > start
        }
    }
}
