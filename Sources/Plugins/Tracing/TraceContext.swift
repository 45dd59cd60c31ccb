import NIOHTTP1

/// A trace's id: 16 bytes, held as two big-endian halves so that it is compared, hashed and
/// sampled without an array (`high` is bytes 0–7, `low` bytes 8–15).
struct TraceID: Hashable, Sendable {
    var high: UInt64
    var low: UInt64

    /// W3C Trace Context: an all-zero trace id is invalid.
    var isValid: Bool { high | low != 0 }
}

/// A span's id: 8 bytes, big-endian in `value`; zero is invalid (and stands for "no parent").
struct SpanID: Hashable, Sendable {
    var value: UInt64

    var isValid: Bool { value != 0 }
}

/// The W3C Trace Context of a span (https://www.w3.org/TR/trace-context/): what `traceparent`
/// and `tracestate` carry, read from the client and written to providers.
struct TraceContext: Hashable, Sendable {
    var traceID: TraceID
    var spanID: SpanID
    /// The trace-flags byte; bit 0 is `sampled`.
    var flags: UInt8
    /// The vendors' `tracestate`, passed on unchanged: the gateway is not a vendor in it.
    var traceState: String?

    static let sampledFlag: UInt8 = 0x01

    var isSampled: Bool { flags & Self.sampledFlag != 0 }

    init(traceID: TraceID, spanID: SpanID, flags: UInt8, traceState: String? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
        self.traceState = traceState
    }

    /// The client's trace context, when it sent a valid `traceparent`. A `tracestate` without a
    /// valid `traceparent` is ignored, as the spec requires; several `tracestate` fields are one
    /// list (RFC 9110 §5.3), joined with commas. One pass over the headers, comparing names by
    /// length first: this runs for every request, and most carry neither header.
    init?(headers: HTTPHeaders) {
        var parent: String?
        var state: String?
        for (name, value) in headers {
            switch name.utf8.count {
            case 11 where parent == nil && Self.isName(name, "traceparent"):
                parent = value
            case 10 where Self.isName(name, "tracestate"):
                state = state.map { $0 + "," + value } ?? value
            default:
                continue
            }
        }
        guard let parent, var context = TraceContext(traceparent: parent) else { return nil }
        if let state, !state.isEmpty { context.traceState = state }
        self = context
    }

    /// Whether a header's `name` is `lowercased` (all ASCII letters), whatever its case.
    private static func isName(_ name: String, _ lowercased: StaticString) -> Bool {
        lowercased.withUTF8Buffer { expected in
            // `byte | 0x20` folds only letters onto a lower-case letter, so this compares letters
            // case-insensitively and anything else exactly.
            name.utf8.elementsEqual(expected) { $0 | 0x20 == $1 }
        }
    }

    /// Parses a `traceparent` value: `{version}-{trace-id}-{parent-id}-{trace-flags}`, lower-case
    /// hex. Version `00` is exactly 55 characters; a later version may append `-…` fields, which
    /// are ignored (the spec's rule for forward compatibility); `ff` is invalid, as are all-zero ids.
    init?(traceparent: String) {
        var value = traceparent
        let parsed: TraceContext? = value.withUTF8 { bytes in
            guard bytes.count >= 55, let version = Self.hexByte(bytes, at: 0), version != 0xff,
                  bytes[2] == Self.dash, bytes[35] == Self.dash, bytes[52] == Self.dash else { return nil }
            if version == 0 {
                guard bytes.count == 55 else { return nil }
            } else if bytes.count > 55, bytes[55] != Self.dash {
                return nil
            }
            guard let high = Self.hex64(bytes, at: 3), let low = Self.hex64(bytes, at: 19),
                  let span = Self.hex64(bytes, at: 36), let flags = Self.hexByte(bytes, at: 53) else { return nil }
            let context = TraceContext(traceID: TraceID(high: high, low: low), spanID: SpanID(value: span), flags: flags)
            guard context.traceID.isValid, context.spanID.isValid else { return nil }
            return context
        }
        guard let parsed else { return nil }
        self = parsed
    }

    /// The `traceparent` value of this context: always version `00`, and only the flag defined by
    /// that version (`sampled`), since unknown flags must not be passed on.
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { out in
            out[0] = Self.zero
            out[1] = Self.zero
            out[2] = Self.dash
            Self.writeHex(traceID.high, into: out, at: 3)
            Self.writeHex(traceID.low, into: out, at: 19)
            out[35] = Self.dash
            Self.writeHex(spanID.value, into: out, at: 36)
            out[52] = Self.dash
            out[53] = Self.zero
            out[54] = isSampled ? Self.zero + 1 : Self.zero
            return 55
        }
    }

    /// Headers that carry this context to a provider.
    var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "traceparent", value: traceparent)
        if let traceState { headers.add(name: "tracestate", value: traceState) }
        return headers
    }

    // MARK: Hex

    private static let dash = UInt8(ascii: "-")
    private static let zero = UInt8(ascii: "0")
    private static let digits: StaticString = "0123456789abcdef"

    /// The value of a lower-case hex digit; W3C Trace Context forbids upper case.
    @inline(__always)
    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
        default: nil
        }
    }

    private static func hexByte(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int) -> UInt8? {
        guard let high = nibble(bytes[offset]), let low = nibble(bytes[offset + 1]) else { return nil }
        return high << 4 | low
    }

    /// Sixteen hex digits from `offset` as a big-endian integer.
    private static func hex64(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in offset..<offset + 16 {
            guard let digit = nibble(bytes[index]) else { return nil }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    private static func writeHex(_ value: UInt64, into out: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        digits.withUTF8Buffer { digits in
            for index in 0..<16 {
                out[offset + index] = digits[Int(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xf]
            }
        }
    }

    /// Lower-case hex of an id, as OTLP/JSON writes ids: 32 digits for a trace, 16 for a span.
    static func hex(_ id: TraceID) -> String {
        String(unsafeUninitializedCapacity: 32) { out in
            writeHex(id.high, into: out, at: 0)
            writeHex(id.low, into: out, at: 16)
            return 32
        }
    }

    static func hex(_ id: SpanID) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            writeHex(id.value, into: out, at: 0)
            return 16
        }
    }
}
