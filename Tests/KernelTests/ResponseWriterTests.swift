import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing
@testable import Kernel

/// What `ResponseWriter` puts on the wire for a whole answer and for a stream, on an `EmbeddedChannel`.
@Suite struct ResponseWriterTests {
    /// A channel that records the parts written; its loop also runs the writer's tasks.
    final class Wire {
        let channel = EmbeddedChannel()
        let recorder = WireRecorder()
        init() throws {
            try channel.pipeline.syncOperations.addHandler(recorder)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        }

        /// Writes `events` as `writeEvents` does in a request's task, and returns what it reported.
        func writeEvents(_ events: EventStream, with writer: ResponseWriter) -> Bool? {
            let reported = Recorded<Bool?>(nil)
            nonisolated(unsafe) let iterator = events.makeAsyncIterator()
            Task(executorPreference: EventLoopTaskExecutor.of(channel.eventLoop)) {
                await writer.writeEvents(iterator).whenSuccess { reported.value = $0 }
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
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1) { headWritten.value += 1 }
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

    @Test func anEmptyAnswerHasNoBodyPart() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1)
        try writer.writeWhole(GatewayResponse(status: .noContent, body: .whole(ByteBuffer())), body: ByteBuffer()).wait()
        #expect(wire.recorder.parts.count == 2)
        #expect(wire.recorder.answers.first?.head.headers["content-length"] == ["0"])
    }

    @Test func anAnswerOnAConnectionThatEndsSaysSo() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: false, version: .http1_0)
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
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1)
        #expect(throws: (any Error).self) { try writer.writeWhole(GatewayResponse(body: .whole(ByteBuffer())), body: ByteBuffer()).wait() }
    }

    @Test func aStreamIsWrittenEventByEventAfterItsHead() throws {
        let wire = try Wire()
        let headWritten = Recorded(0)
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1) { headWritten.value += 1 }
        let events = EventStream([SSEEvent(event: "start", data: "a"), SSEEvent(data: "b\nc")])
        let answer = GatewayResponse(headers: ["content-length": "99", "content-type": "application/json"], body: .events(events))
        writer.writeStreamHead(answer)
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
        // One body part per event: each is flushed as it comes.
        #expect(wire.recorder.parts.count == 4)
    }

    @Test func aStreamThatFailsClosesTheConnectionSoTheTruncationShows() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1)
        let (failing, continuation) = AsyncThrowingStream<SSEEvent, any Error>.makeStream()
        continuation.yield(SSEEvent(data: "a"))
        continuation.finish(throwing: Boom())
        writer.writeStreamHead(GatewayResponse(body: .whole(ByteBuffer())))
        #expect(wire.writeEvents(EventStream(failing), with: writer) == false)
        #expect(!wire.channel.isActive)
        let written = try #require(wire.recorder.answers.first)
        #expect(written.body == "data: a\n\n")
        #expect(!written.isComplete)
    }

    @Test func aStreamToAClientThatLeftReportsFalse() throws {
        let wire = try Wire()
        let writer = ResponseWriter(channel: wire.channel, keepAlive: true, version: .http1_1)
        writer.writeStreamHead(GatewayResponse(body: .events(EventStream([]))))
        try wire.channel.close().wait()
        #expect(wire.writeEvents(EventStream([SSEEvent(data: "a")]), with: writer) == false)
    }
}
