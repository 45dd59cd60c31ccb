import NIOCore

/// OTLP/HTTP's JSON encoding (`protocol: http/json`): the `ExportTraceServiceRequest` in
/// protobuf's JSON mapping with OTLP's exceptions (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
/// lowerCamelCase member names, trace and span ids as hex (not base64), enums as integers,
/// 64-bit integers (times, `intValue`) as decimal strings. Written straight into a buffer.
enum OTLPJSON {
    static let contentType = "application/json"

    static func encode(_ spans: some Collection<SpanRecord>, resource: OTLPResource,
                       allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        // About 600 bytes a span with the gateway's attributes; the buffer grows if needed.
        var json = JSONWriter(buffer: allocator.buffer(capacity: 256 + 640 * spans.count))
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
        return json.buffer
    }
}

/// The JSON writing of `OTLPJSON`: members in a fixed order, strings escaped per RFC 8259.
private struct JSONWriter {
    var buffer: ByteBuffer

    mutating func raw(_ text: StaticString) {
        _ = text.withUTF8Buffer { buffer.writeBytes($0) }
    }

    mutating func span(_ span: SpanRecord) {
        raw(#"{"traceId":""#)
        buffer.writeString(TraceContext.hex(span.context.traceID))
        raw(#"","spanId":""#)
        buffer.writeString(TraceContext.hex(span.context.spanID))
        raw(#"""#)
        if let state = span.context.traceState, !state.isEmpty {
            raw(#","traceState":"#)
            string(state)
        }
        if span.parentSpanID.isValid {
            raw(#","parentSpanId":""#)
            buffer.writeString(TraceContext.hex(span.parentSpanID))
            raw(#"""#)
        }
        raw(#","flags":"#)
        buffer.writeString(String(span.otlpFlags))
        raw(#","name":"#)
        string(span.name)
        raw(#","kind":"#)
        buffer.writeString(String(span.kind.rawValue))
        raw(#","startTimeUnixNano":""#)
        buffer.writeString(String(span.startNanoseconds))
        raw(#"","endTimeUnixNano":""#)
        buffer.writeString(String(span.endNanoseconds))
        raw(#"","attributes":"#)
        attributes(span.attributes)
        if let status = span.status {
            raw(#","status":{"code":"#)
            buffer.writeString(String(SpanRecord.Status.errorCode))
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
                buffer.writeString(String(value))
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
            buffer.writeString(value.description)
        }
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`… or `\u00XX`; every
    /// other character as its UTF-8 (a Swift string is valid Unicode), in runs.
    mutating func string(_ value: String) {
        raw(#"""#)
        var value = value
        value.withUTF8 { bytes in
            var start = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                buffer.writeBytes(UnsafeBufferPointer(rebasing: bytes[start..<index]))
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
                    let digits: StaticString = "0123456789abcdef"
                    raw(#"\u00"#)
                    digits.withUTF8Buffer { digits in
                        buffer.writeInteger(digits[Int(byte >> 4)])
                        buffer.writeInteger(digits[Int(byte & 0xf)])
                    }
                }
            }
            buffer.writeBytes(UnsafeBufferPointer(rebasing: bytes[start...]))
        }
        raw(#"""#)
    }
}
