/// A span that has ended, as it waits in the `SpanBuffer` for export: exactly what OTLP's `Span`
/// message carries of it (https://github.com/open-telemetry/opentelemetry-proto, trace.proto).
/// A value with one array of attributes, built once at the end of the span, so recording it is
/// one append under one lock.
struct SpanRecord: Sendable {
    /// OTLP's `Span.SpanKind` (its numbers are the wire values).
    enum Kind: UInt8, Sendable {
        case internalSpan = 1
        case server = 2
        case client = 3
    }

    /// OTLP's `Status`: only errors are set; a span without one is "unset" (OK by default).
    struct Status: Sendable, Equatable {
        /// `Status.StatusCode.STATUS_CODE_ERROR`.
        static let errorCode: UInt8 = 2

        var message: String
    }

    var context: TraceContext
    /// The parent span's id; invalid (zero) for the root of a trace.
    var parentSpanID: SpanID
    /// Whether the parent came from another process (the client's `traceparent`): OTLP's
    /// `SPAN_FLAGS_CONTEXT_IS_REMOTE`.
    var parentIsRemote: Bool
    var name: String
    var kind: Kind
    var startNanoseconds: UInt64
    var endNanoseconds: UInt64
    var attributes: [SpanAttribute]
    var status: Status?

    /// OTLP's `Span.flags`: the W3C trace flags in bits 0–7, bit 8 says whether bit 9 (the
    /// parent is remote) is known. Receivers that predate the field skip it.
    var otlpFlags: UInt32 {
        var flags = UInt32(context.flags) | 0x100
        if parentIsRemote { flags |= 0x200 }
        return flags
    }
}

/// One attribute of a span: a key (a literal, so not copied) and a scalar value, OTLP's
/// `KeyValue` with an `AnyValue` of a string, bool, int or double.
struct SpanAttribute: Sendable, Equatable {
    enum Value: Sendable, Equatable {
        case string(String)
        case bool(Bool)
        case int(Int64)
        case double(Double)
    }

    var key: String
    var value: Value

    init(_ key: String, _ value: String) {
        self.key = key
        self.value = .string(value)
    }

    init(_ key: String, _ value: Int) {
        self.key = key
        self.value = .int(Int64(value))
    }

    init(_ key: String, _ value: Double) {
        self.key = key
        self.value = .double(value)
    }

    init(_ key: String, _ value: Bool) {
        self.key = key
        self.value = .bool(value)
    }
}
