import Kernel
import NIOCore

/// OTLP/HTTP's JSON encoding (`protocol: http/json`): the `ExportTraceServiceRequest` in
/// protobuf's JSON mapping with OTLP's exceptions (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
/// lowerCamelCase member names, trace and span ids as hex (not base64), enums as integers,
/// 64-bit integers (times, `intValue`) as decimal strings. Written straight into a buffer.
enum OTLPJSON {
    static let contentType = "application/json"

    static func encode(_ spans: some Collection<SpanRecord>, resource: OTLPResource,
                       allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        // About 700 bytes a span with the gateway's attributes; the array grows if needed.
        var json = JSONWriter()
        json.bytes.reserveCapacity(256 + 768 * spans.count)
        json.raw(#"{"resourceSpans":[{"resource":{"attributes":"#)
        json.attributes(resource.attributes)
        json.raw(#"},"scopeSpans":[{"scope":{"name":"#)
        json.string(resource.scopeName)
        json.raw(#"},"spans":["#)
        var first = true
        for span in spans {
            if !first { json.raw(",") }
            first = false
            json.span(span)
        }
        json.raw("]}]}]}")
        return allocator.buffer(bytes: json.bytes)
    }
}

/// The JSON writing of `OTLPJSON`, into an array (appending to one is cheaper than `ByteBuffer`'s
/// bookkeeping per write): members in a fixed order, strings escaped per RFC 8259, numbers and
/// ids written as digits without intermediate strings.
private struct JSONWriter {
    var bytes: [UInt8] = []

    private static let hexDigits: StaticString = "0123456789abcdef"

    mutating func raw(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// `value` as lower-case hex, all 16 digits (half a trace id, or a span id).
    mutating func hex(_ value: UInt64) {
        Self.hexDigits.withUTF8Buffer { digits in
            for shift in stride(from: 60, through: 0, by: -4) {
                bytes.append(digits[Int(truncatingIfNeeded: value >> UInt64(shift)) & 0xf])
            }
        }
    }

    mutating func decimal(_ value: UInt64) {
        DecimalText.append(value, to: &bytes)
    }

    mutating func integer(_ value: Int64) {
        DecimalText.append(Int(value), to: &bytes)
    }

    mutating func span(_ span: SpanRecord) {
        raw(#"{"traceId":""#)
        hex(span.context.traceID.high)
        hex(span.context.traceID.low)
        raw(#"","spanId":""#)
        hex(span.context.spanID.value)
        raw(#"""#)
        if let state = span.context.traceState, !state.isEmpty {
            raw(#","traceState":"#)
            string(state)
        }
        if span.parentSpanID.isValid {
            raw(#","parentSpanId":""#)
            hex(span.parentSpanID.value)
            raw(#"""#)
        }
        raw(#","flags":"#)
        decimal(UInt64(span.otlpFlags))
        raw(#","name":"#)
        string(span.name)
        raw(#","kind":"#)
        decimal(UInt64(span.kind.rawValue))
        raw(#","startTimeUnixNano":""#)
        decimal(span.startNanoseconds)
        raw(#"","endTimeUnixNano":""#)
        decimal(span.endNanoseconds)
        raw(#"","attributes":"#)
        attributes(span.attributes)
        if let status = span.status {
            raw(#","status":{"code":"#)
            decimal(UInt64(SpanRecord.Status.errorCode))
            if !status.message.isEmpty {
                raw(#","message":"#)
                string(status.message)
            }
            raw("}")
        }
        raw("}")
    }

    mutating func attributes(_ attributes: [SpanAttribute]) {
        raw("[")
        for (index, attribute) in attributes.enumerated() {
            if index > 0 { raw(",") }
            raw(#"{"key":"#)
            string(attribute.key)
            raw(#","value":{"#)
            switch attribute.value {
            case .string(let value):
                raw(#""stringValue":"#)
                string(value)
            case .bool(let value):
                raw(value ? #""boolValue":true"# : #""boolValue":false"#)
            case .int(let value):
                raw(#""intValue":""#)
                integer(value)
                raw(#"""#)
            case .double(let value):
                raw(#""doubleValue":"#)
                double(value)
            }
            raw("}}")
        }
        raw("]")
    }

    /// A double as protobuf's JSON mapping has it: a number, or one of the strings it uses for
    /// the values JSON cannot write.
    mutating func double(_ value: Double) {
        if value.isNaN {
            raw(#""NaN""#)
        } else if value.isInfinite {
            raw(value < 0 ? #""-Infinity""# : #""Infinity""#)
        } else {
            // Swift's shortest round-tripping form ("0.25", "1e-05"), which is valid JSON.
            bytes.append(contentsOf: value.description.utf8)
        }
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`… or `\u00XX`;
    /// every other character as its UTF-8 (a Swift string is valid Unicode), in runs.
    mutating func string(_ value: String) {
        raw(#"""#)
        let done: Void? = value.utf8.withContiguousStorageIfAvailable { escaped($0) }
        if done == nil { escaped(Array(value.utf8)) }  // a string not stored as UTF-8 (bridged)
        raw(#"""#)
    }

    private mutating func escaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        var start = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
            start = index + 1
            switch byte {
            case UInt8(ascii: "\""): raw(#"\""#)
            case UInt8(ascii: "\\"): raw(#"\\"#)
            case UInt8(ascii: "\n"): raw(#"\n"#)
            case UInt8(ascii: "\r"): raw(#"\r"#)
            case UInt8(ascii: "\t"): raw(#"\t"#)
            case 0x08: raw(#"\b"#)
            case 0x0c: raw(#"\f"#)
            default:
                raw(#"\u00"#)
                Self.hexDigits.withUTF8Buffer { digits in
                    bytes.append(digits[Int(byte >> 4)])
                    bytes.append(digits[Int(byte & 0xf)])
                }
            }
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
    }

    private mutating func escaped(_ utf8: [UInt8]) {
        utf8.withUnsafeBufferPointer { escaped($0) }
    }
}
