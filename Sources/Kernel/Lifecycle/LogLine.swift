import Glibc
import Logging
import NIOCore

/// One JSON log line written by hand: the same bytes jansson writes for the same object with the
/// Kernel's encoding flags (compact, 15 significant digits, `/` and non-ASCII as they are),
/// without building a jansson tree for a line that is thrown away once written.
/// Every request with `access-log` writes one, so its cost is per request.
///
/// The line grows in an array and becomes a `ByteBuffer` once, when it is finished: a line is
/// written a byte or a few at a time, and each of `ByteBuffer`'s writes checks its storage's
/// uniqueness, capacity and exclusive access at run time.
struct LogLine {
    private(set) var bytes: [UInt8] = []
    private var isFirstMember = true

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    /// A metadata value alone, as JSON text (a journal field that is not a string).
    static func text(of value: Logger.Metadata.Value) -> String {
        var line = LogLine(capacity: 64)
        line.bytes.removeAll(keepingCapacity: true)  // no object around it
        line.write(value)
        return String(decoding: line.bytes, as: UTF8.self)
    }

    /// Closes the object and ends the line.
    mutating func finish(allocator: ByteBufferAllocator) -> ByteBuffer {
        bytes.append(UInt8(ascii: "}"))
        bytes.append(UInt8(ascii: "\n"))
        return allocator.buffer(bytes: bytes)
    }

    mutating func key(_ key: String) {
        if isFirstMember { isFirstMember = false } else { bytes.append(UInt8(ascii: ",")) }
        writeString(key)
        bytes.append(UInt8(ascii: ":"))
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
            // The dynamic type first: a cast that fails costs far more than one that succeeds,
            // and a cast to a protocol is a conformance search.
            let type = Swift.type(of: convertible)
            if type == Int.self, let int = convertible as? Int {
                writeInteger(int)
            } else if type == Double.self, let double = convertible as? Double {
                writeDouble(double)
            } else if type == UInt.self, let int = convertible as? UInt {
                writeInteger(Int(truncatingIfNeeded: int))
            } else if type == Bool.self, let bool = convertible as? Bool {
                writeBool(bool)
            } else if let int = convertible as? any BinaryInteger {
                writeInteger(Int(truncatingIfNeeded: int))
            } else {
                writeString(convertible.description)
            }
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .dictionary(let values):
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, element)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                writeString(key)
                bytes.append(UInt8(ascii: ":"))
                write(element)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func writeText(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func writeBool(_ bool: Bool) { writeText(bool ? "true" : "false") }

    mutating func writeInteger(_ int: Int) {
        DecimalText.append(int, to: &bytes)
    }

    /// jansson's `jsonp_dtostr` with precision 15: `%.15g`, `.0` added to what would read back as
    /// an integer, and the exponent without `+` or leading zeros. Not finite: `null`, as `JSON(_:)`.
    mutating func writeDouble(_ double: Double) {
        guard double.isFinite else {
            writeText("null")
            return
        }
        if Self.writeHundredths(double, into: &bytes) || Self.writeShortest(double, into: &bytes) { return }
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
            let base = buffer.baseAddress!
            var length = Int(withVaList([double]) { vsnprintf(base, 32, "%.15g", $0) })
            let text = UnsafeMutableBufferPointer(start: base, count: 32)
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
            bytes.append(contentsOf: UnsafeMutableRawBufferPointer(start: base, count: length))
        }
    }

    /// A number of whole hundredths (latencies in milliseconds are rounded so) below 10¹³, written
    /// with integer arithmetic. It is the double nearest to k/100, a decimal of at most 15 digits,
    /// so `%.15g` and the shortest spelling both write k/100 without its trailing zeros.
    private static func writeHundredths(_ double: Double, into bytes: inout [UInt8]) -> Bool {
        guard double.magnitude < 1e13, double != 0 || double.sign == .plus else { return false }
        let scaled = (double * 100).rounded()
        guard scaled / 100 == double else { return false }
        let hundredths = Int(scaled)
        if hundredths < 0 { bytes.append(UInt8(ascii: "-")) }
        DecimalText.append(Int(hundredths.magnitude / 100), to: &bytes)
        let fraction = Int(hundredths.magnitude % 100)
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(fraction / 10))
        if fraction % 10 != 0 { bytes.append(UInt8(ascii: "0") + UInt8(fraction % 10)) }
        return true
    }

    /// Swift's shortest spelling of `double`, when it is what `%.15g` and jansson write: a normal
    /// number of at most 15 significant digits reads back as itself at that precision (`DBL_DIG`).
    /// Between 10⁻⁴ and 10¹⁵ both write it without an exponent, with `.0` after a whole number;
    /// below 10⁻⁴ both write an exponent, which jansson writes without `+` or leading zeros. Costs
    /// are such numbers, and `vsnprintf` costs thousands of instructions.
    private static func writeShortest(_ double: Double, into bytes: inout [UInt8]) -> Bool {
        let magnitude = double.magnitude
        guard magnitude == 0 || (magnitude >= .leastNormalMagnitude && magnitude < 1e15) else { return false }
        var text = double.description
        return text.withUTF8 { utf8 in
            let exponent = utf8.firstIndex(of: UInt8(ascii: "e"))
            let mantissa = UnsafeBufferPointer(rebasing: utf8[..<(exponent ?? utf8.count)])
            var digits = 0, trailingZeros = 0, leading = true
            for byte in mantissa where byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                if leading && byte == UInt8(ascii: "0") { continue }
                leading = false
                digits += 1
                trailingZeros = byte == UInt8(ascii: "0") ? trailingZeros + 1 : 0
            }
            guard digits - trailingZeros <= 15, (exponent != nil) == (magnitude != 0 && magnitude < 1e-4) else { return false }
            bytes.append(contentsOf: mantissa)
            guard var index = exponent else { return true }
            bytes.append(UInt8(ascii: "e"))
            index += 1
            if utf8[index] == UInt8(ascii: "-") { bytes.append(UInt8(ascii: "-")) }
            if utf8[index] == UInt8(ascii: "-") || utf8[index] == UInt8(ascii: "+") { index += 1 }
            while index < utf8.count - 1, utf8[index] == UInt8(ascii: "0") { index += 1 }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[index...]))
            return true
        }
    }

    /// A JSON string as jansson writes it (`JSONStringEscaping`).
    mutating func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in JSONStringEscaping.forEachPiece(of: utf8) { bytes.append(contentsOf: $0) } }
        bytes.append(UInt8(ascii: "\""))
    }

    /// The time now as ISO 8601 in UTC with milliseconds (`2026-12-02T14:22:06.123Z`), as a JSON
    /// string; written digit by digit: a Foundation format style costs microseconds per line.
    mutating func writeTimeNow() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        bytes.append(UInt8(ascii: "\""))
        writeDigits(Int(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        writeDigits(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        writeDigits(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        writeDigits(Int(parts.tm_sec), 2)
        bytes.append(UInt8(ascii: "."))
        writeDigits(Int(now.tv_nsec) / 1_000_000, 3)
        writeText("Z\"")
    }

    private mutating func writeDigits(_ value: Int, _ count: Int) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        var value = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            value %= divisor
            divisor /= 10
        }
    }
}
