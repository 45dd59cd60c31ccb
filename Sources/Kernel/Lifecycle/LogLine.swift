import Glibc
import Logging
import NIOCore

/// One JSON log line written straight into a `ByteBuffer`: the same bytes jansson writes for the
/// same object with the Kernel's encoding flags (compact, 15 significant digits, `/` and non-ASCII
/// as they are), without building a jansson tree for a line that is thrown away once written.
/// Every request with `access-log` writes one, so its cost is per request.
struct LogLine {
    private(set) var bytes: ByteBuffer
    private var isFirstMember = true

    init(allocator: ByteBufferAllocator, capacity: Int) {
        bytes = allocator.buffer(capacity: capacity)
        bytes.writeInteger(UInt8(ascii: "{"))
    }

    /// A metadata value alone, as JSON text (a journal field that is not a string).
    static func text(of value: Logger.Metadata.Value) -> String {
        var line = LogLine(allocator: ByteBufferAllocator(), capacity: 64)
        line.bytes.clear()  // no object around it
        line.write(value)
        return String(buffer: line.bytes)
    }

    /// Closes the object and ends the line.
    mutating func finish() -> ByteBuffer {
        bytes.writeInteger(UInt8(ascii: "}"))
        bytes.writeInteger(UInt8(ascii: "\n"))
        return bytes
    }

    mutating func key(_ key: String) {
        if isFirstMember { isFirstMember = false } else { bytes.writeInteger(UInt8(ascii: ",")) }
        writeString(key)
        bytes.writeInteger(UInt8(ascii: ":"))
    }

    mutating func member(_ key: String, _ value: Logger.Metadata.Value) {
        self.key(key)
        write(value)
    }

    /// As jansson would encode it (a dictionary's keys sorted).
    mutating func write(_ value: Logger.Metadata.Value) {
        switch value {
        case .string(let string): writeString(string)
        case .stringConvertible(let convertible):
            switch convertible {  // the concrete types first: a cast to a protocol costs a conformance search
            case let int as Int: writeInteger(int)
            case let int as UInt: writeInteger(Int(truncatingIfNeeded: int))
            case let int as any BinaryInteger: writeInteger(Int(truncatingIfNeeded: int))
            case let double as Double: writeDouble(double)
            case let bool as Bool: bytes.writeStaticString(bool ? "true" : "false")
            default: writeString(convertible.description)
            }
        case .array(let values):
            bytes.writeInteger(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { bytes.writeInteger(UInt8(ascii: ",")) }
                write(element)
            }
            bytes.writeInteger(UInt8(ascii: "]"))
        case .dictionary(let values):
            bytes.writeInteger(UInt8(ascii: "{"))
            for (index, (key, element)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.writeInteger(UInt8(ascii: ",")) }
                writeString(key)
                bytes.writeInteger(UInt8(ascii: ":"))
                write(element)
            }
            bytes.writeInteger(UInt8(ascii: "}"))
        }
    }

    mutating func writeInteger(_ int: Int) {
        bytes.writeString(String(int))
    }

    /// jansson's `jsonp_dtostr` with precision 15: `%.15g`, `.0` added to what would read back as
    /// an integer, and the exponent without `+` or leading zeros. Not finite: `null`, as `JSON(_:)`.
    mutating func writeDouble(_ double: Double) {
        guard double.isFinite else {
            bytes.writeStaticString("null")
            return
        }
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
            let base = buffer.baseAddress!
            var length = Int(withVaList([double]) { vsnprintf(base, 32, "%.15g", $0) })
            var text = UnsafeMutableBufferPointer(start: base, count: 32)
            var exponent: Int?
            for index in 0..<length where text[index] == CChar(UInt8(ascii: "e")) { exponent = index }
            if exponent == nil, !(0..<length).contains(where: { text[$0] == CChar(UInt8(ascii: ".")) }) {
                text[length] = CChar(UInt8(ascii: "."))
                text[length + 1] = CChar(UInt8(ascii: "0"))
                length += 2
            }
            if let exponent {
                var start = exponent + 1
                var end = start + 1
                if text[start] == CChar(UInt8(ascii: "-")) { start += 1 }
                while end < length, text[end] == CChar(UInt8(ascii: "0")) { end += 1 }
                if end != start {
                    for index in end..<length { text[start + index - end] = text[index] }
                    length -= end - start
                }
            }
            text = UnsafeMutableBufferPointer(start: base, count: length)
            bytes.writeBytes(UnsafeRawBufferPointer(text))
        }
    }

    /// A JSON string as jansson's `dump_string` writes it without `JSON_ENSURE_ASCII` or
    /// `JSON_ESCAPE_SLASH`: `"`, `\` and control characters escaped, everything else as it is.
    mutating func writeString(_ string: String) {
        bytes.writeInteger(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var plainStart = 0
            for (index, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                if index > plainStart { bytes.writeBytes(UnsafeBufferPointer(rebasing: utf8[plainStart..<index])) }
                plainStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): bytes.writeStaticString("\\\\")
                case 0x08: bytes.writeStaticString("\\b")
                case 0x0C: bytes.writeStaticString("\\f")
                case 0x0A: bytes.writeStaticString("\\n")
                case 0x0D: bytes.writeStaticString("\\r")
                case 0x09: bytes.writeStaticString("\\t")
                default:
                    bytes.writeStaticString("\\u00")
                    bytes.writeInteger(Self.hexDigits[Int(byte >> 4)])
                    bytes.writeInteger(Self.hexDigits[Int(byte & 0xF)])
                }
            }
            if utf8.count > plainStart { bytes.writeBytes(UnsafeBufferPointer(rebasing: utf8[plainStart...])) }
        }
        bytes.writeInteger(UInt8(ascii: "\""))
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// The time now as ISO 8601 in UTC with milliseconds (`2026-12-02T14:22:06.123Z`), as a JSON
    /// string; written digit by digit: a Foundation format style costs microseconds per line.
    mutating func writeTimeNow() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        bytes.writeInteger(UInt8(ascii: "\""))
        writeDigits(Int(parts.tm_year) + 1900, 4)
        bytes.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mon) + 1, 2)
        bytes.writeInteger(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mday), 2)
        bytes.writeInteger(UInt8(ascii: "T"))
        writeDigits(Int(parts.tm_hour), 2)
        bytes.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_min), 2)
        bytes.writeInteger(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_sec), 2)
        bytes.writeInteger(UInt8(ascii: "."))
        writeDigits(Int(now.tv_nsec) / 1_000_000, 3)
        bytes.writeStaticString("Z\"")
    }

    private mutating func writeDigits(_ value: Int, _ count: Int) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        var value = value
        while divisor > 0 {
            bytes.writeInteger(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            value %= divisor
            divisor /= 10
        }
    }
}
