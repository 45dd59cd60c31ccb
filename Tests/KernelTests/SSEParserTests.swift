import NIOCore
import Testing
@testable import Kernel

@Suite struct SSEParserTests {
    static let stream = "event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keep-alive comment\n\ndata: line one\ndata: line two\n\ndata:nospace\rid: 7\r\rdata: [DONE]\n\n"

    static let expected = [
        SSEEvent(event: "message_start", data: "{\"a\":1}"),
        SSEEvent(data: "line one\nline two"),
        SSEEvent(data: "nospace", id: "7"),
        SSEEvent(data: "[DONE]", id: "7"),
    ]

    @Test func parsesWholeStream() {
        var parser = SSEParser()
        #expect(parser.feed(ByteBuffer(string: Self.stream)) == Self.expected)
        #expect(parser.finish() == nil)
    }

    @Test func parsesEventsSplitAtEveryByte() {
        let bytes = Array(Self.stream.utf8)
        for split in 1..<bytes.count {
            var parser = SSEParser()
            var events = parser.feed(ByteBuffer(bytes: bytes[..<split]))
            events += parser.feed(ByteBuffer(bytes: bytes[split...]))
            #expect(events == Self.expected, "split at \(split)")
        }
        var parser = SSEParser()
        let oneByOne = bytes.flatMap { parser.feed(ByteBuffer(bytes: [$0])) }
        #expect(oneByOne == Self.expected)
    }

    @Test func flushesUnterminatedLastEvent() {
        var parser = SSEParser()
        #expect(parser.feed(ByteBuffer(string: "data: tail")).isEmpty)
        #expect(parser.finish() == SSEEvent(data: "tail"))
    }

    @Test func holdsNoBufferBetweenEvents() {
        var parser = SSEParser()
        #expect(parser.feed(ByteBuffer(string: "data: one\n\ndata: two\n\n")).map(\.data) == ["one", "two"])
        #expect(parser.heldBytes == 0)
        #expect(parser.feed(ByteBuffer(string: "data: thr")).isEmpty)
        #expect(parser.heldBytes > 0)
        #expect(parser.feed(ByteBuffer(string: "ee\n\n")).map(\.data) == ["three"])
        #expect(parser.heldBytes == 0)
    }

    @Test func anEventOfExactlyTheLimitPasses() {
        // The limit counts a line's bytes and the event's data so far.
        var parser = SSEParser(maxEventBytes: 16)
        let line = "data: " + String(repeating: "x", count: 10)
        #expect(parser.feed(ByteBuffer(string: line + "\n\n")).map(\.data) == [String(repeating: "x", count: 10)])
        #expect(parser.feed(ByteBuffer(string: line + "x")).isEmpty)
        #expect(parser.overflowed)
        var split = SSEParser(maxEventBytes: 16)
        #expect(split.feed(ByteBuffer(string: "data: 0123")).isEmpty)
        #expect(split.feed(ByteBuffer(string: "456789\n\n")).map(\.data) == ["0123456789"])
        #expect(!split.overflowed)
    }

    @Test func writerRoundTrips() {
        var buffer = ByteBuffer()
        for event in Self.expected { event.write(to: &buffer) }
        var parser = SSEParser()
        #expect(parser.feed(buffer) == Self.expected)
    }

    @Test func findsTextInAnEventsDataByItsBytes() {
        let usage = SSEEvent(data: #"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#)
        #expect(usage.dataContains("prompt_tokens"))
        #expect(usage.dataContains("\"usage\""))
        #expect(!usage.dataContains("total_tokens"))
        #expect(!SSEEvent(data: "prompt_token").dataContains("prompt_tokens"))  // a needle longer than the data
        #expect(SSEEvent(data: "café prompt_tokens é").dataContains("prompt_tokens"))
        #expect(!SSEEvent(data: "").dataContains("x"))
        #expect(SSEEvent(data: "").dataContains(""))
        // A bridged or shared string: its UTF-8 is made contiguous first.
        let joined = ["a", "prompt", "_tokens"].joined()
        #expect(SSEEvent(data: String(joined.dropFirst())).dataContains("prompt_tokens"))
    }
}
