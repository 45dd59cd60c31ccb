import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing
@testable import Kernel

/// What `ResponseWriter` puts on the wire for a whole answer and for a stream, on an `EmbeddedChannel`.
@Suite struct ResponseWriterTests {
    /// A channel that records the bytes written; its loop also runs the writer's tasks.
    final class Wire {
        let channel = EmbeddedChannel()
        let recorder = WireRecorder()
        init() throws {
            try channel.pipeline.syncOperations.addHandler(recorder)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        }

        /// Writes `events` as `writeEvents` does in a request's task, and returns what it reported.
        func writeEvents(_ events: EventStream, with writer: ResponseWriter, framing: ResponseWriter.StreamFraming = .chunked) -> Bool? {
            let reported = Recorded<Bool?>(nil)
            nonisolated(unsafe) let iterator = events.makeAsyncIterator()
            Task(executorPreference: EventLoopTaskExecutor.of(channel.eventLoop)) {
                await writer.writeEvents(iterator, framing: framing).whenSuccess { reported.value = $0 }
            }
            channel.embeddedEventLoop.run()
            return reported.value
        }
    }

    /// A value the writer's `@Sendable` callbacks can change.
    final class Recorded<Value: Sendable>: Sendable {
        private let mutex: Mutex<Value>
        init(_ value: Value) { mutex = Mutex(value) }
        var value: Value {
            get { mutex.withLock { $0 } }
            set { mutex.withLock { $0 = newValue } }
        }
    }

    struct Boom: Error {}

    @Test func aWholeAnswerCarriesItsLength() throws {
        let wire = try Wire()
        let headWritten = Recorded(0)
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST) { headWritten.value += 1 }
        let answer = GatewayResponse(status: .created, headers: ["x-request-id": "r1"], body: .whole(ByteBuffer(string: "hello")))
        let written = writer.writeWhole(answer, body: ByteBuffer(string: "hello"))
        try written.wait()
        #expect(headWritten.value == 1)
        let answers = wire.recorder.answers
        try #require(answers.count == 1)
        #expect(answers[0].status == .created)
        #expect(answers[0].head.version == .http1_1)
        #expect(answers[0].head.headers["x-request-id"] == ["r1"])
        #expect(answers[0].head.headers["content-length"] == ["5"])
        #expect(!answers[0].closesConnection)
        #expect(answers[0].body == "hello")
        #expect(answers[0].isComplete)
    }

    @Test func anEmptyAnswerIsItsHeadAlone() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        try writer.writeWhole(GatewayResponse(status: .ok, body: .whole(ByteBuffer())), body: ByteBuffer()).wait()
        #expect(wire.recorder.writes == 1)
        #expect(wire.recorder.answers.first?.head.headers["content-length"] == ["0"])
    }

    @Test func aSmallBodyGoesWithItsHeadAndALargeOneAfterIt() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        let small = ByteBuffer(string: String(repeating: "s", count: ResponseWriter.inlineBodyLimit))
        try writer.writeWhole(GatewayResponse(body: .whole(small)), body: small).wait()
        #expect(wire.recorder.writes == 1)
        let large = ByteBuffer(string: String(repeating: "l", count: ResponseWriter.inlineBodyLimit + 1))
        try writer.writeWhole(GatewayResponse(body: .whole(large)), body: large).wait()
        #expect(wire.recorder.writes == 3)
        #expect(wire.recorder.answers.map(\.body) == [String(buffer: small), String(buffer: large)])
        #expect(wire.recorder.answers.allSatisfy { $0.isComplete })
    }

    @Test func theExactBytesOfAnAnswer() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: false, version: .http1_1, method: .POST)
        var headers: HTTPHeaders = ["Content-Type": "text/plain", "Content-Length": "99", "Transfer-Encoding": "gzip",
                                    "Connection": "keep-alive", "x-custom": "a\tb"]
        headers.add(name: "x-custom", value: "é")
        try writer.writeWhole(GatewayResponse(status: .custom(code: 299, reasonPhrase: "Fine"), headers: headers,
                                              body: .whole(ByteBuffer())), body: ByteBuffer(string: "hi")).wait()
        #expect(String(buffer: wire.recorder.bytes)
            == "HTTP/1.1 299 Fine\r\nContent-Type: text/plain\r\nx-custom: a\tb\r\nx-custom: é\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi")
    }

    @Test func theAnswerToAHeadHasItsLengthButNoBody() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .HEAD)
        try writer.writeWhole(GatewayResponse(body: .whole(ByteBuffer(string: "hello"))), body: ByteBuffer(string: "hello")).wait()
        #expect(String(buffer: wire.recorder.bytes) == "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    }

    @Test func aNoContentAnswerHasNeitherLengthNorBody() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        try writer.writeWhole(GatewayResponse(status: .noContent, headers: ["content-length": "3"], body: .whole(ByteBuffer())),
                              body: ByteBuffer(string: "abc")).wait()
        #expect(String(buffer: wire.recorder.bytes) == "HTTP/1.1 204 No Content\r\n\r\n")
    }

    @Test(arguments: [("x-bad", "a\r\nx-injected: 1"), ("x-bad", "a\nb"), ("x-bad", "nul\u{0}"), ("bad name", "v"), ("", "v")])
    func anAnswerWithAHeaderHTTPCannotCarryBecomesA500(name: String, value: String) throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        var headers = HTTPHeaders()
        headers.add(name: name, value: value)
        let written = writer.writeWhole(GatewayResponse(headers: headers, body: .whole(ByteBuffer())), body: ByteBuffer(string: "secret"))
        #expect(throws: (any Error).self) { try written.wait() }
        let answers = wire.recorder.answers
        try #require(answers.count == 1)
        #expect(answers[0].status == .internalServerError)
        #expect(answers[0].closesConnection)
        #expect(answers[0].head.headers["x-injected"].isEmpty && answers[0].head.headers["x-bad"].isEmpty)
        #expect(!answers[0].body.contains("secret"))
        #expect(answers[0].isComplete)
    }

    @Test func aStreamWhoseHeadHTTPCannotCarryIsNotSent() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        let events = EventStream([SSEEvent(data: "a")])
        let framing = writer.writeStreamHead(GatewayResponse(headers: ["x-bad": "a\rb"], body: .events(events)))
        #expect(framing == .unsent)
        #expect(wire.writeEvents(events, with: writer, framing: framing) == false)
        #expect(wire.recorder.answers.map(\.status) == [.internalServerError])
        #expect(!wire.channel.isActive)
    }

    @Test func anAnswerOnAConnectionThatEndsSaysSo() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: false, version: .http1_0, method: .POST)
        var answer = GatewayResponse(body: .whole(ByteBuffer(string: "x")))
        answer.headers.add(name: "connection", value: "keep-alive")
        try writer.writeWhole(answer, body: ByteBuffer(string: "x")).wait()
        let head = try #require(wire.recorder.answers.first).head
        #expect(head.version == .http1_0)
        #expect(head.headers["connection"] == ["close"])
    }

    @Test func aWholeAnswerToAClientThatLeftReportsTheFailure() throws {
        let wire = try Wire()
        try wire.channel.close().wait()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        #expect(throws: (any Error).self) { try writer.writeWhole(GatewayResponse(body: .whole(ByteBuffer())), body: ByteBuffer()).wait() }
    }

    @Test func aStreamIsWrittenEventByEventAfterItsHead() throws {
        let wire = try Wire()
        let headWritten = Recorded(0)
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST) { headWritten.value += 1 }
        let events = EventStream([SSEEvent(event: "start", data: "a"), SSEEvent(data: "b\nc")])
        let answer = GatewayResponse(headers: ["content-length": "99", "content-type": "application/json"], body: .events(events))
        #expect(writer.writeStreamHead(answer) == .chunked)
        #expect(headWritten.value == 1)
        let head = try #require(wire.recorder.answers.first).head
        #expect(head.headers["content-type"] == ["text/event-stream"])
        #expect(head.headers["content-length"].isEmpty)
        #expect(head.headers["cache-control"] == ["no-cache"])
        #expect(head.headers["x-accel-buffering"] == ["no"])

        #expect(wire.writeEvents(events, with: writer) == true)
        let written = try #require(wire.recorder.answers.first)
        #expect(written.body == "event: start\ndata: a\n\ndata: b\ndata: c\n\n")
        #expect(written.isComplete)
        // One chunk per event: each is flushed as it comes.
        #expect(wire.recorder.writes == 4)
        #expect(String(buffer: wire.recorder.bytes).hasSuffix("\r\n\r\n16\r\nevent: start\ndata: a\n\n\r\n11\r\ndata: b\ndata: c\n\n\r\n0\r\n\r\n"))
    }

    @Test func aStreamOverHTTP10EndsWithItsConnection() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_0, method: .POST)
        let events = EventStream([SSEEvent(data: "a"), SSEEvent(data: "b")])
        #expect(writer.writeStreamHead(GatewayResponse(body: .events(events))) == .untilClose)
        #expect(wire.writeEvents(events, with: writer, framing: .untilClose) == false)
        let written = try #require(wire.recorder.answers.first)
        #expect(written.closesConnection)
        #expect(written.head.headers["transfer-encoding"].isEmpty)
        #expect(written.body == "data: a\n\ndata: b\n\n")
    }

    @Test func aStreamAnsweringAHeadIsItsHeadAlone() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .HEAD)
        let events = EventStream([SSEEvent(data: "a")])
        #expect(writer.writeStreamHead(GatewayResponse(body: .events(events))) == .none)
        #expect(wire.writeEvents(events, with: writer, framing: .none) == true)
        #expect(String(buffer: wire.recorder.bytes).hasSuffix("x-accel-buffering: no\r\n\r\n"))
    }

    @Test func aStreamThatFailsClosesTheConnectionSoTheTruncationShows() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        let (failing, continuation) = AsyncThrowingStream<SSEEvent, any Error>.makeStream()
        continuation.yield(SSEEvent(data: "a"))
        continuation.finish(throwing: Boom())
        _ = writer.writeStreamHead(GatewayResponse(body: .whole(ByteBuffer())))
        #expect(wire.writeEvents(EventStream(failing), with: writer) == false)
        #expect(!wire.channel.isActive)
        let written = try #require(wire.recorder.answers.first)
        #expect(written.body == "data: a\n\n")
        #expect(!written.isComplete)
    }

    @Test func aStreamToAClientThatLeftReportsFalse() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1, method: .POST)
        _ = writer.writeStreamHead(GatewayResponse(body: .events(EventStream([]))))
        try wire.channel.close().wait()
        #expect(wire.writeEvents(EventStream([SSEEvent(data: "a")]), with: writer) == false)
    }
}
