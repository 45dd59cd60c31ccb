import NIOCore

/// OTLP/HTTP's default encoding: an `ExportTraceServiceRequest` in protobuf's wire format
/// (opentelemetry-proto: collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
/// common/v1/common.proto, resource/v1/resource.proto), encoded by hand: one resource, one
/// scope, the spans. Fields with proto3 default values are left out, as generated encoders do;
/// `AnyValue` members are a `oneof`, so they are written even when empty or zero.
enum OTLPProtobuf {
    static let contentType = "application/x-protobuf"

    /// Field numbers, named as in the .proto files.
    private enum Field {
        // ExportTraceServiceRequest
        static let resourceSpans = 1
        // ResourceSpans
        static let resource = 1, scopeSpans = 2
        // Resource
        static let resourceAttributes = 1
        // ScopeSpans
        static let scope = 1, spans = 2
        // InstrumentationScope
        static let scopeName = 1
        // Span
        static let traceID = 1, spanID = 2, traceState = 3, parentSpanID = 4, name = 5, kind = 6,
                   startTime = 7, endTime = 8, attributes = 9, status = 15, flags = 16
        // Status
        static let statusMessage = 2, statusCode = 3
        // KeyValue
        static let key = 1, value = 2
        // AnyValue
        static let stringValue = 1, boolValue = 2, intValue = 3, doubleValue = 4
    }

    static func encode(_ spans: some Collection<SpanRecord>, resource: OTLPResource,
                       allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        // Measure first: every embedded message is preceded by its length.
        var spanSizes: [Int] = []
        spanSizes.reserveCapacity(spans.count)
        var spansSize = 0
        for span in spans {
            let size = spanSize(span)
            spanSizes.append(size)
            spansSize += ProtobufWriter.lengthDelimitedSize(Field.spans, size)
        }
        let scope = ProtobufWriter.stringSize(Field.scopeName, resource.scopeName)
        let scopeSpans = ProtobufWriter.lengthDelimitedSize(Field.scope, scope) + spansSize
        let resourceBody = resource.attributes.reduce(0) {
            $0 + ProtobufWriter.lengthDelimitedSize(Field.resourceAttributes, keyValueSize($1))
        }
        let resourceSpans = ProtobufWriter.lengthDelimitedSize(Field.resource, resourceBody)
            + ProtobufWriter.lengthDelimitedSize(Field.scopeSpans, scopeSpans)
        let total = ProtobufWriter.lengthDelimitedSize(Field.resourceSpans, resourceSpans)

        return ProtobufWriter.encode(size: total, allocator: allocator) { writer in
            writer.lengthDelimitedHeader(Field.resourceSpans, length: resourceSpans)
            writer.lengthDelimitedHeader(Field.resource, length: resourceBody)
            for attribute in resource.attributes { write(attribute, field: Field.resourceAttributes, into: &writer) }
            writer.lengthDelimitedHeader(Field.scopeSpans, length: scopeSpans)
            writer.lengthDelimitedHeader(Field.scope, length: scope)
            writer.stringField(Field.scopeName, resource.scopeName)
            for (span, size) in zip(spans, spanSizes) {
                writer.lengthDelimitedHeader(Field.spans, length: size)
                write(span, into: &writer)
            }
        }
    }

    // MARK: Span

    static func spanSize(_ span: SpanRecord) -> Int {
        var size = ProtobufWriter.lengthDelimitedSize(Field.traceID, 16) + ProtobufWriter.lengthDelimitedSize(Field.spanID, 8)
        if let state = span.context.traceState, !state.isEmpty { size += ProtobufWriter.stringSize(Field.traceState, state) }
        if span.parentSpanID.isValid { size += ProtobufWriter.lengthDelimitedSize(Field.parentSpanID, 8) }
        if !span.name.isEmpty { size += ProtobufWriter.stringSize(Field.name, span.name) }
        size += ProtobufWriter.varintFieldSize(Field.kind, UInt64(span.kind.rawValue))
        size += ProtobufWriter.fixed64FieldSize(Field.startTime) + ProtobufWriter.fixed64FieldSize(Field.endTime)
        for attribute in span.attributes { size += ProtobufWriter.lengthDelimitedSize(Field.attributes, keyValueSize(attribute)) }
        if let status = span.status { size += ProtobufWriter.lengthDelimitedSize(Field.status, statusSize(status)) }
        size += ProtobufWriter.fixed32FieldSize(Field.flags)
        return size
    }

    private static func write(_ span: SpanRecord, into writer: inout ProtobufWriter) {
        writer.bytesField(Field.traceID, bigEndian: span.context.traceID.high, span.context.traceID.low)
        writer.bytesField(Field.spanID, bigEndian: span.context.spanID.value)
        if let state = span.context.traceState, !state.isEmpty { writer.stringField(Field.traceState, state) }
        if span.parentSpanID.isValid { writer.bytesField(Field.parentSpanID, bigEndian: span.parentSpanID.value) }
        if !span.name.isEmpty { writer.stringField(Field.name, span.name) }
        writer.varintField(Field.kind, UInt64(span.kind.rawValue))
        writer.fixed64Field(Field.startTime, span.startNanoseconds)
        writer.fixed64Field(Field.endTime, span.endNanoseconds)
        for attribute in span.attributes { write(attribute, field: Field.attributes, into: &writer) }
        if let status = span.status {
            writer.lengthDelimitedHeader(Field.status, length: statusSize(status))
            if !status.message.isEmpty { writer.stringField(Field.statusMessage, status.message) }
            writer.varintField(Field.statusCode, UInt64(SpanRecord.Status.errorCode))
        }
        writer.fixed32Field(Field.flags, span.otlpFlags)
    }

    private static func statusSize(_ status: SpanRecord.Status) -> Int {
        (status.message.isEmpty ? 0 : ProtobufWriter.stringSize(Field.statusMessage, status.message))
            + ProtobufWriter.varintFieldSize(Field.statusCode, UInt64(SpanRecord.Status.errorCode))
    }

    // MARK: KeyValue

    static func keyValueSize(_ attribute: SpanAttribute) -> Int {
        ProtobufWriter.stringSize(Field.key, attribute.key) + ProtobufWriter.lengthDelimitedSize(Field.value, anyValueSize(attribute.value))
    }

    private static func anyValueSize(_ value: SpanAttribute.Value) -> Int {
        switch value {
        case .string(let string): ProtobufWriter.stringSize(Field.stringValue, string)
        case .bool: ProtobufWriter.varintFieldSize(Field.boolValue, 1)
        case .int(let int): ProtobufWriter.varintFieldSize(Field.intValue, UInt64(bitPattern: int))
        case .double: ProtobufWriter.fixed64FieldSize(Field.doubleValue)
        }
    }

    private static func write(_ attribute: SpanAttribute, field: Int, into writer: inout ProtobufWriter) {
        writer.lengthDelimitedHeader(field, length: keyValueSize(attribute))
        writer.stringField(Field.key, attribute.key)
        writer.lengthDelimitedHeader(Field.value, length: anyValueSize(attribute.value))
        switch attribute.value {
        case .string(let string): writer.stringField(Field.stringValue, string)
        case .bool(let bool): writer.varintField(Field.boolValue, bool ? 1 : 0)
        // int64 is a varint of the two's complement: a negative value takes ten bytes.
        case .int(let int): writer.varintField(Field.intValue, UInt64(bitPattern: int))
        case .double(let double): writer.fixed64Field(Field.doubleValue, double.bitPattern)
        }
    }
}
