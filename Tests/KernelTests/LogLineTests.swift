import Foundation
import Logging
import NIOCore
import Testing
@testable import Kernel

/// `JSONLogHandler` writes its lines by hand; they must read back as the object jansson would have
/// written, byte for byte where jansson's output is defined (everything but the time).
@Suite struct LogLineTests {
    static let fields: Logger.Metadata = [
        "request_id": .string("req-1"),
        "quoted": .string("a \"b\" \\ c/d é 🙂 \u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}"),
        "status": .stringConvertible(UInt(200)),
        "attempts": .stringConvertible(3),
        "negative": .stringConvertible(Int32(-7)),
        "stream": .stringConvertible(true),
        "whole_ms": .stringConvertible(12.0),
        "latency_ms": .stringConvertible(1.23),
        "tiny": .stringConvertible(0.000012345),
        "huge": .stringConvertible(1.5e300),
        "third": .stringConvertible(1.0 / 3),
        "negative_exponent": .stringConvertible(-2.5e-7),
        "not_a_number": .stringConvertible(Double.nan),
        "other": .stringConvertible(URL(string: "https://example.com/a")!),
        "list": .array([.string("x"), .stringConvertible(1)]),
        "headers": .dictionary(["b": .string("2"), "a": .string("1")]),
    ]

    /// The reference: the value as a jansson tree, which the log handler built before `LogLine`.
    static func janssonValue(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let string): JSON(string)
        case .stringConvertible(let convertible):
            switch convertible {  // the concrete types first: a cast to a protocol costs a conformance search
            case let int as Int: JSON(int)
            case let int as UInt: JSON(Int(truncatingIfNeeded: int))
            case let int as any BinaryInteger: JSON(Int(truncatingIfNeeded: int))
            case let double as Double: JSON(double)
            case let bool as Bool: JSON(bool)
            default: JSON(convertible.description)
            }
        case .array(let values): JSON(array: values.map(janssonValue))
        case .dictionary(let values): JSON(object: values.sorted { $0.key < $1.key }.map { ($0.key, janssonValue($0.value)) })
        }
    }

    @Test func journalFieldsAreTheValuesJSONText() {
        for (_, value) in Self.fields {
            #expect(LogLine.text(of: value) == Self.janssonValue(value).description)
        }
    }

    @Test func writesWhatJanssonWrites() throws {
        for (key, value) in Self.fields {
            var line = LogLine(capacity: 16)
            line.member(key, value)
            let written = String(buffer: line.finish(allocator: ByteBufferAllocator()))
            let expected = String(decoding: JSON(object: [(key, Self.janssonValue(value))]).encoded(), as: UTF8.self) + "\n"
            #expect(written == expected, "\(key)")
        }
    }

    /// Strings are passed over eight bytes at a time: an escape or a non-ASCII character must be
    /// seen at every offset of a word.
    @Test func anEscapeIsSeenAtEveryOffset() {
        for special in ["\"", "\\", "\u{1}", "\n", "\u{1F}", "é", "🙂", "\u{7F}"] {
            for offset in 0..<20 {
                let text = String(repeating: "a", count: offset) + special + String(repeating: "b", count: 19 - offset)
                #expect(LogLine.text(of: .string(text)) == JSON(text).description, "\(special.unicodeScalars.first!.value) at \(offset)")
            }
        }
    }

    /// Numbers written by Swift's shortest spelling must be jansson's too: around the bounds of
    /// that way (10⁻⁴, 10¹⁵), at 15, 16 and 17 significant digits, and anywhere at random.
    @Test func numbersAreWrittenAsJanssonWritesThem() {
        var generator = SystemRandomNumberGenerator()
        var numbers: [Double] = [0, -0.0, 1, -1, 0.1, 0.2 + 0.1, 1e-4, 9.9999e-5, 1.00000000000001e-4, 1e15, 999_999_999_999_999,
                                 99_999_999_999_999.9, 123_456_789_012_345, 1_234_567_890_123_456, 0.123456789012345,
                                 0.1234567890123456, 2.0 / 3, 1e14, .leastNonzeroMagnitude, .leastNormalMagnitude, 1.2e-5, 3e-6, 1e-100, 2.5e-300, .greatestFiniteMagnitude, -1e300]
        for _ in 0..<2_000 {
            let exponent = Int.random(in: -12...17, using: &generator)
            let scale = (0..<abs(exponent)).reduce(1.0) { value, _ in value * 10 }
            let value = Double.random(in: 1..<10, using: &generator) * (exponent < 0 ? 1 / scale : scale)
            numbers.append(value)
            numbers.append((value * 100).rounded() / 100)  // as latencies are written
            numbers.append(-(value * 1_000).rounded() / 1_000)
            numbers.append(Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator)))
        }
        for number in numbers where number.isFinite {
            let written = LogLine.text(of: .stringConvertible(number))
            #expect(written == JSON(number).description, "\(number.bitPattern)")
        }
    }

    @Test func aLineHasTheTimeLevelMessageLoggerAndFields() throws {
        let before = Date.now.addingTimeInterval(-1)
        let bytes = JSONLogHandler.line(level: .info, message: "request", label: "sluice.access", metadata: Self.fields)
        #expect(bytes.getInteger(at: bytes.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\n"))
        let line = try JSON.parse(bytes)
        #expect(line.keys.prefix(4) == ["time", "level", "msg", "logger"])
        #expect(line["level"]?.string == "info")
        #expect(line["msg"]?.string == "request")
        #expect(line["logger"]?.string == "sluice.access")
        #expect(line["quoted"]?.string == "a \"b\" \\ c/d é 🙂 \u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}")
        #expect(line["latency_ms"]?.double == 1.23)
        #expect(line["headers"]?["a"]?.string == "1")
        let time = try #require(line["time"]?.string)
        #expect(time.count == 24 && time.hasSuffix("Z"))
        let parsed = try #require(try? Date(time, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        #expect(parsed >= before && parsed <= Date.now.addingTimeInterval(1))
    }

    @Test func fieldsWinOverTheHandlersAndBothOverTheFirstFour() throws {
        let bytes = JSONLogHandler.line(level: .warning, message: "m", label: "l", metadata: ["msg": .string("from the event"), "k": .string("event")],
                                        handlerMetadata: ["k": .string("handler"), "logger": .string("from the handler"), "h": .string("only")])
        let line = try JSON.parse(bytes)
        #expect(line.keys.sorted() == ["h", "k", "level", "logger", "msg", "time"])
        #expect(line["msg"]?.string == "from the event")
        #expect(line["logger"]?.string == "from the handler")
        #expect(line["k"]?.string == "event")
        #expect(line["level"]?.string == "warning")
    }

    /// Fields as a plugin writes them: each kind of value, and a key the handler also has.
    struct SomeFields: LogFields {
        func write(to sink: inout some LogFieldSink) {
            sink.add("request_id", "r-1")
            sink.add("quoted", "a \"b\" \\ é")
            sink.add("status", 200)
            sink.add("latency_ms", 1.23)
            sink.add("cost_usd", 0.000125)
            sink.add("stream", true)
            sink.add("msg", "not the handler's message")
            sink.add("k", "field")
            sink.add("headers", .dictionary(["b": .string("2"), "a": .string("1")]))
        }
    }

    @Test func fieldsWrittenStraightMakeTheLineTheirDictionaryMakes() throws {
        let handlerMetadata: Logger.Metadata = ["k": .string("handler"), "h": .string("only")]
        let straight = try JSON.parse(JSONLogHandler.line(level: .info, message: "request", label: "sluice.access", fields: SomeFields(),
                                                          handlerMetadata: handlerMetadata))
        var gathered = MetadataFields()
        SomeFields().write(to: &gathered)
        gathered.metadata["msg"] = nil  // the first four are the handler's on the straight path
        let viaDictionary = try JSON.parse(JSONLogHandler.line(level: .info, message: "request", label: "sluice.access",
                                                               metadata: gathered.metadata, handlerMetadata: handlerMetadata))
        #expect(straight.keys.prefix(4) == ["time", "level", "msg", "logger"])
        #expect(Array(straight.keys.dropFirst(4)) == ["request_id", "quoted", "status", "latency_ms", "cost_usd", "stream", "k", "headers", "h"])
        #expect(straight["msg"]?.string == "request")
        #expect(straight["k"]?.string == "field")
        for key in straight.keys where key != "time" {
            #expect(straight[key] == viaDictionary[key], "\(key)")
        }
        #expect(Set(straight.keys) == Set(viaDictionary.keys))
    }
}
