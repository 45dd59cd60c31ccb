import Foundation
import Kernel
import NIOCore
@testable import Plugins
import Testing

/// `tracing`'s hand-written OTLP encodings (Sources/Plugins/Tracing/OTLPProtobuf.swift,
/// OTLPJSON.swift): the protobuf read back by a wire-format reader written here from the
/// encoding guide (https://protobuf.dev/programming-guides/encoding/), independent of the
/// writer, and checked field by field against opentelemetry-proto's numbers; the JSON parsed
/// and checked against OTLP/JSON's rules. Tests/Integration/test_tracing.py decodes the
/// protobuf with the official opentelemetry-proto package too.
@Suite struct TracingEncodingTests {
    // MARK: A protobuf reader

    /// One field of a message as read from the wire.
    enum Wire: Equatable {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes([UInt8])
        case fixed32(UInt32)
    }

    struct Malformed: Error {}

    /// A message's fields, in wire order.
    struct Message {
        var fields: [(number: Int, value: Wire)] = []

        init(_ bytes: [UInt8]) throws {
            var index = 0
            func varint() throws -> UInt64 {
                var value: UInt64 = 0
                var shift: UInt64 = 0
                while true {
                    guard index < bytes.count, shift < 64 else { throw Malformed() }
                    let byte = bytes[index]
                    index += 1
                    value |= UInt64(byte & 0x7f) << shift
                    if byte & 0x80 == 0 { return value }
                    shift += 7
                }
            }
            func take(_ count: Int) throws -> [UInt8] {
                guard count >= 0, index + count <= bytes.count else { throw Malformed() }
                defer { index += count }
                return Array(bytes[index..<index + count])
            }
            func little(_ bytes: [UInt8]) -> UInt64 { bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) } }
            while index < bytes.count {
                let key = try varint()
                let number = Int(key >> 3)
                switch key & 7 {
                case 0: fields.append((number, .varint(try varint())))
                case 1: fields.append((number, .fixed64(little(try take(8)))))
                case 2: fields.append((number, .bytes(try take(Int(try varint())))))
                case 5: fields.append((number, .fixed32(UInt32(little(try take(4))))))
                default: throw Malformed()
                }
            }
        }

        func all(_ number: Int) -> [Wire] { fields.filter { $0.number == number }.map(\.value) }

        func messages(_ number: Int) throws -> [Message] {
            try all(number).map { wire in
                guard case .bytes(let bytes) = wire else { throw Malformed() }
                return try Message(bytes)
            }
        }

        func message(_ number: Int) throws -> Message {
            let found = try messages(number)
            guard found.count == 1 else { throw Malformed() }
            return found[0]
        }

        func bytes(_ number: Int) -> [UInt8]? {
            if case .bytes(let bytes)? = all(number).last { return bytes }
            return nil
        }

        func string(_ number: Int) -> String? { bytes(number).map { String(decoding: $0, as: UTF8.self) } }

        func varint(_ number: Int) -> UInt64? {
            if case .varint(let value)? = all(number).last { return value }
            return nil
        }

        func fixed64(_ number: Int) -> UInt64? {
            if case .fixed64(let value)? = all(number).last { return value }
            return nil
        }

        func fixed32(_ number: Int) -> UInt32? {
            if case .fixed32(let value)? = all(number).last { return value }
            return nil
        }

        /// OTLP `KeyValue`s (field `number`) as key → decoded `AnyValue`.
        func attributes(_ number: Int) throws -> [String: Wire] {
            var attributes: [String: Wire] = [:]
            for keyValue in try messages(number) {
                let value = try keyValue.message(2)
                guard let key = keyValue.string(1), value.fields.count == 1 else { throw Malformed() }
                // AnyValue: 1 string (bytes), 2 bool, 3 int, 4 double; tagged by field number here.
                switch value.fields[0] {
                case (1, .bytes(let bytes)): attributes[key] = .bytes(bytes)
                case (2, .varint(let bool)): attributes[key] = .varint(bool == 0 ? 0 : 1)
                case (3, .varint(let int)): attributes[key] = .varint(int)
                case (4, .fixed64(let double)): attributes[key] = .fixed64(double)
                default: throw Malformed()
                }
            }
            return attributes
        }
    }

    // MARK: Spans to encode

    static let traceID = TraceID(high: 0x4bf9_2f35_77b3_4da6, low: 0xa3ce_929d_0e0e_4736)

    static var server: SpanRecord {
        SpanRecord(context: TraceContext(traceID: traceID, spanID: SpanID(value: 0x1122_3344_5566_7788), flags: 1, traceState: "rojo=00f067aa0ba902b7"),
                   parentSpanID: SpanID(value: 0x00f0_67aa_0ba9_02b7), parentIsRemote: true, name: "chat gpt-4o", kind: .server,
                   startNanoseconds: 1_764_000_000_123_456_789, endNanoseconds: 1_764_000_000_223_456_789,
                   attributes: [SpanAttribute("gen_ai.request.model", "gpt-4o"), SpanAttribute("http.response.status_code", 502),
                                SpanAttribute("sluice.cost_usd", 0.000125), SpanAttribute("sluice.flag", true),
                                SpanAttribute("sluice.negative", -3), SpanAttribute("sluice.empty", ""),
                                SpanAttribute("sluice.big", Int.max), SpanAttribute("sluice.no", false)],
                   status: SpanRecord.Status(message: "upstream \"failed\"\n\u{1}é"))
    }

    static var client: SpanRecord {
        SpanRecord(context: TraceContext(traceID: traceID, spanID: SpanID(value: 0x99aa_bbcc_ddee_ff00), flags: 1),
                   parentSpanID: SpanID(value: 0x1122_3344_5566_7788), parentIsRemote: false, name: "chat up-m", kind: .client,
                   startNanoseconds: 1_764_000_000_133_000_000, endNanoseconds: 1_764_000_000_213_000_000,
                   attributes: [SpanAttribute("sluice.attempt", 1)], status: nil)
    }

    static var root: SpanRecord {
        SpanRecord(context: TraceContext(traceID: TraceID(high: 1, low: 2), spanID: SpanID(value: 3), flags: 1),
                   parentSpanID: SpanID(value: 0), parentIsRemote: false, name: "models", kind: .server,
                   startNanoseconds: 10, endNanoseconds: 20, attributes: [], status: nil)
    }

    static func bigEndian(_ values: UInt64...) -> [UInt8] {
        values.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
    }

    // MARK: Protobuf

    @Test func varintsAreWrittenAndMeasuredAlike() throws {
        for (value, bytes) in [(UInt64(0), [0x00]), (1, [0x01]), (127, [0x7f]), (128, [0x80, 0x01]), (150, [0x96, 0x01]),
                               (300, [0xac, 0x02]), (16_383, [0xff, 0x7f]), (16_384, [0x80, 0x80, 0x01]),
                               (UInt64.max, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])] as [(UInt64, [UInt8])] {
            #expect(ProtobufWriter.varintSize(value) == bytes.count, "\(value)")
            let written = ProtobufWriter.encode(size: bytes.count) { $0.varint(value) }
            #expect(Array(written.readableBytesView) == bytes, "\(value)")
        }
        // A tag: field 16 of wire type 5 (Span.flags) takes two bytes; fixed32 is little-endian.
        #expect(ProtobufWriter.fixed32FieldSize(16) == 6)
        let flags = ProtobufWriter.encode(size: 6) { $0.fixed32Field(16, 0x0301) }
        #expect(Array(flags.readableBytesView) == [0x85, 0x01, 0x01, 0x03, 0x00, 0x00])
        let bytes = ProtobufWriter.encode(size: 18 + 10) { writer in
            writer.bytesField(1, bigEndian: 0x0102_0304_0506_0708, 0x090a_0b0c_0d0e_0f10)
            writer.bytesField(2, bigEndian: 0xa1a2_a3a4_a5a6_a7a8)
        }
        #expect(Array(bytes.readableBytesView) == [0x0a, 16] + Array(1...16) + [0x12, 8, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8])
    }

    @Test func aSpanWithoutAttributesHasTheseBytes() {
        // Worked out by hand from trace.proto: ExportTraceServiceRequest{resource_spans{resource{
        // attributes{service.name="s"}}, scope_spans{scope{name="sluice.tracing"}, spans{…}}}}.
        let encoded = Array(OTLPProtobuf.encode([Self.root], resource: OTLPResource(serviceName: "s")).readableBytesView)
        let keyValue: [UInt8] = [0x0a, 12] + Array("service.name".utf8) + [0x12, 3, 0x0a, 1, UInt8(ascii: "s")]
        let resource: [UInt8] = [0x0a, UInt8(keyValue.count)] + keyValue
        let span: [UInt8] = [0x0a, 16] + Self.bigEndian(1, 2) + [0x12, 8] + Self.bigEndian(3)
            + [0x2a, 6] + Array("models".utf8) + [0x30, 2]
            + [0x39, 10, 0, 0, 0, 0, 0, 0, 0] + [0x41, 20, 0, 0, 0, 0, 0, 0, 0]
            + [0x85, 0x01, 0x01, 0x01, 0x00, 0x00]
        let scope: [UInt8] = [0x0a, 14] + Array("sluice.tracing".utf8)
        let scopeSpans: [UInt8] = [0x0a, UInt8(scope.count)] + scope + [0x12, UInt8(span.count)] + span
        let resourceSpans: [UInt8] = [0x0a, UInt8(resource.count)] + resource + [0x12, UInt8(scopeSpans.count)] + scopeSpans
        #expect(encoded == [0x0a, UInt8(resourceSpans.count)] + resourceSpans)
    }

    @Test func spansReadBackFromProtobuf() throws {
        let encoded = OTLPProtobuf.encode([Self.server, Self.client], resource: OTLPResource(serviceName: "sluice-test"))
        let request = try Message(Array(encoded.readableBytesView))
        #expect(request.fields.map(\.number) == [1])
        let resourceSpans = try request.message(1)
        let resource = try resourceSpans.message(1)
        #expect(try resource.attributes(1) == ["service.name": .bytes(Array("sluice-test".utf8))])
        let scopeSpans = try resourceSpans.message(2)
        #expect(try scopeSpans.message(1).string(1) == "sluice.tracing")
        let spans = try scopeSpans.messages(2)
        #expect(spans.count == 2)

        let server = spans[0]
        #expect(server.bytes(1) == Self.bigEndian(Self.traceID.high, Self.traceID.low))
        #expect(server.bytes(2) == Self.bigEndian(0x1122_3344_5566_7788))
        #expect(server.string(3) == "rojo=00f067aa0ba902b7")
        #expect(server.bytes(4) == Self.bigEndian(0x00f0_67aa_0ba9_02b7))
        #expect(server.string(5) == "chat gpt-4o")
        #expect(server.varint(6) == 2, "SPAN_KIND_SERVER")
        #expect(server.fixed64(7) == 1_764_000_000_123_456_789)
        #expect(server.fixed64(8) == 1_764_000_000_223_456_789)
        #expect(server.fixed32(16) == 0x301)
        let attributes = try server.attributes(9)
        #expect(attributes["gen_ai.request.model"] == .bytes(Array("gpt-4o".utf8)))
        #expect(attributes["http.response.status_code"] == .varint(502))
        #expect(attributes["sluice.cost_usd"] == .fixed64(0.000125.bitPattern))
        #expect(attributes["sluice.flag"] == .varint(1))
        #expect(attributes["sluice.no"] == .varint(0), "a oneof member is written even when false")
        #expect(attributes["sluice.negative"] == .varint(UInt64(bitPattern: -3)), "int64 as ten-byte two's complement")
        #expect(attributes["sluice.empty"] == .bytes([]), "a oneof member is written even when empty")
        #expect(attributes["sluice.big"] == .varint(UInt64(Int64.max)))
        #expect(attributes.count == 8)
        let status = try server.message(15)
        #expect(status.string(2) == "upstream \"failed\"\n\u{1}é")
        #expect(status.varint(3) == 2, "STATUS_CODE_ERROR")
        #expect(status.varint(1) == nil, "the deprecated code field is not written")

        let client = spans[1]
        #expect(client.bytes(4) == Self.bigEndian(0x1122_3344_5566_7788))
        #expect(client.varint(6) == 3, "SPAN_KIND_CLIENT")
        #expect(client.string(3) == nil, "no trace state, no field")
        #expect(try client.messages(15).isEmpty, "no status, no field")
        #expect(client.fixed32(16) == 0x101)
        #expect(try client.attributes(9) == ["sluice.attempt": .varint(1)])

        let root = try Message(Array(OTLPProtobuf.encode([Self.root], resource: OTLPResource(serviceName: "s")).readableBytesView))
        let rootSpan = try root.message(1).message(2).message(2)
        #expect(rootSpan.bytes(4) == nil, "a root span has no parent_span_id")
    }

    @Test func largeBatchesMeasureExactly() throws {
        // Sizes past one-byte lengths at every level (the encoder asserts its measure in debug builds).
        let long = String(repeating: "x", count: 20_000)
        var spans = (0..<600).map { index -> SpanRecord in
            var span = Self.server
            span.name = "span \(index)"
            return span
        }
        spans[3].attributes.append(SpanAttribute("long", long))
        let encoded = OTLPProtobuf.encode(spans, resource: OTLPResource(serviceName: long))
        let decoded = try Message(Array(encoded.readableBytesView)).message(1).message(2).messages(2)
        #expect(decoded.count == 600)
        #expect(decoded[599].string(5) == "span 599")
        #expect(try decoded[3].attributes(9)["long"] == .bytes(Array(long.utf8)))
    }

    // MARK: JSON

    @Test func spansReadBackFromJSON() throws {
        let encoded = OTLPJSON.encode([Self.server, Self.client], resource: OTLPResource(serviceName: "sluice-test"))
        let json = try JSON.parse(encoded)
        let resourceSpans = try #require(json["resourceSpans"]?.elements.first)
        let resource = try #require(resourceSpans["resource"]?["attributes"]?.elements.first)
        #expect(resource["key"]?.string == "service.name")
        #expect(resource["value"]?["stringValue"]?.string == "sluice-test")
        let scopeSpans = try #require(resourceSpans["scopeSpans"]?.elements.first)
        #expect(scopeSpans["scope"]?["name"]?.string == "sluice.tracing")
        let spans = try #require(scopeSpans["spans"]?.elements)
        #expect(spans.count == 2)

        let server = spans[0]
        #expect(server["traceId"]?.string == "4bf92f3577b34da6a3ce929d0e0e4736", "ids in hex, not base64")
        #expect(server["spanId"]?.string == "1122334455667788")
        #expect(server["parentSpanId"]?.string == "00f067aa0ba902b7")
        #expect(server["traceState"]?.string == "rojo=00f067aa0ba902b7")
        #expect(server["name"]?.string == "chat gpt-4o")
        #expect(server["kind"]?.int == 2, "enums as integers")
        #expect(server["flags"]?.int == 0x301)
        #expect(server["startTimeUnixNano"]?.string == "1764000000123456789", "64-bit integers as strings")
        #expect(server["endTimeUnixNano"]?.string == "1764000000223456789")
        #expect(server["status"]?["code"]?.int == 2)
        #expect(server["status"]?["message"]?.string == "upstream \"failed\"\n\u{1}é")
        var attributes: [String: JSON] = [:]
        for attribute in server["attributes"]?.elements ?? [] {
            attributes[attribute["key"]?.string ?? ""] = attribute["value"]
        }
        #expect(attributes["gen_ai.request.model"]?["stringValue"]?.string == "gpt-4o")
        #expect(attributes["http.response.status_code"]?["intValue"]?.string == "502")
        #expect(attributes["sluice.negative"]?["intValue"]?.string == "-3")
        #expect(attributes["sluice.big"]?["intValue"]?.string == "9223372036854775807")
        #expect(attributes["sluice.cost_usd"]?["doubleValue"]?.double == 0.000125)
        #expect(attributes["sluice.flag"]?["boolValue"]?.bool == true)
        #expect(attributes["sluice.no"]?["boolValue"]?.bool == false)
        #expect(attributes["sluice.empty"]?["stringValue"]?.string == "")

        let client = spans[1]
        #expect(client["kind"]?.int == 3)
        #expect(client["traceState"] == nil && client["status"] == nil)
        let root = try JSON.parse(OTLPJSON.encode([Self.root], resource: OTLPResource(serviceName: "s")))
        #expect(root["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?[0]?["parentSpanId"] == nil)
    }

    @Test func everyStringIsEscapedForJSON() throws {
        var span = Self.root
        let nasty = "q\"b\\s/n\nr\rt\tb\u{8}f\u{c}nul\u{0}esc\u{1b}del\u{7f} é 😀 \u{2028}"
        span.name = nasty
        span.attributes = [SpanAttribute(nasty, nasty), SpanAttribute("nan", Double.nan), SpanAttribute("inf", -Double.infinity)]
        let encoded = OTLPJSON.encode([span], resource: OTLPResource(serviceName: nasty))
        let text = String(decoding: encoded.readableBytesView, as: UTF8.self)
        #expect(!text.contains("\u{0}") && !text.contains("\n") && text.contains(#"\u0000"#) && text.contains(#"\u001b"#))
        let json = try JSON.parse(encoded)
        let parsed = try #require(json["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?[0])
        #expect(parsed["name"]?.string == nasty)
        #expect(parsed["attributes"]?[0]?["key"]?.string == nasty)
        #expect(parsed["attributes"]?[0]?["value"]?["stringValue"]?.string == nasty)
        #expect(parsed["attributes"]?[1]?["value"]?["doubleValue"]?.string == "NaN")
        #expect(parsed["attributes"]?[2]?["value"]?["doubleValue"]?.string == "-Infinity")
        #expect(json["resourceSpans"]?[0]?["resource"]?["attributes"]?[0]?["value"]?["stringValue"]?.string == nasty)
    }
}
