import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing
@testable import Kernel

/// One connection through the server's own pipeline (`RequestStartWatch`, NIO's HTTP/1.1 request
/// decoder, `HTTPConnectionHandler`) on an `EmbeddedChannel`: the tests drive its
/// bytes, its clock and its events, and read what reaches the wire
/// (docs/ARCHITECTURE.md, "What a request may cost").
@Suite struct HTTPConnectionHandlerTests {
    // MARK: Answers and keep-alive

    @Test func aRequestIsAnsweredAndTheConnectionKept() throws {
        let connection = try TestConnection()
        try connection.send("POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello")
        #expect(connection.responder.requests == ["POST /a hello"])
        let answers = connection.wire.answers
        try #require(answers.count == 1)
        #expect(answers[0].status == .ok)
        #expect(answers[0].body == "answer to /a")
        #expect(answers[0].isComplete)
        #expect(answers[0].head.headers["content-length"] == ["12"])
        #expect(!answers[0].closesConnection)
        #expect(connection.isOpen)
        #expect(connection.tracker.inFlight == 0)
    }

    @Test func pipelinedRequestsAreAnsweredOneAtATimeInOrder() throws {
        let connection = try TestConnection()
        try connection.send("POST /one HTTP/1.1\r\ncontent-length: 3\r\n\r\nabcGET /two HTTP/1.1\r\n\r\nGET /three HTTP/1.1\r\n\r\n")
        #expect(connection.responder.requests == ["POST /one abc", "GET /two ", "GET /three "])
        #expect(connection.wire.answers.map(\.body) == ["answer to /one", "answer to /two", "answer to /three"])
        #expect(connection.wire.answers.allSatisfy { $0.isComplete && !$0.closesConnection })
        #expect(connection.isOpen)
    }

    @Test func aPipelinedRequestWaitsForTheAnswerBeforeIt() throws {
        let connection = try TestConnection()
        try connection.send("GET /slow HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n")
        #expect(connection.responder.requests == ["GET /slow "])
        #expect(connection.wire.answers.isEmpty)
        connection.responder.release()
        connection.run()
        #expect(connection.responder.requests == ["GET /slow ", "GET /next "])
        #expect(connection.wire.answers.map(\.body) == ["slow answer", "answer to /next"])
    }

    @Test func aClientAskingForCloseGetsItAfterTheAnswer() throws {
        let connection = try TestConnection()
        try connection.send("GET /a HTTP/1.1\r\nconnection: close\r\n\r\n")
        #expect(connection.wire.answers.map(\.closesConnection) == [true])
        #expect(!connection.isOpen)
    }

    // MARK: Refusals

    @Test func aDeclaredBodyOverTheLimitIsRefusedEarlyAndTheConnectionLingers() throws {
        let connection = try TestConnection(maxBodyBytes: 10)
        try connection.send("POST /big HTTP/1.1\r\ncontent-length: 100\r\n\r\n")
        // Answered before a byte of the body is sent, and never passed to the responder.
        let answers = connection.wire.answers
        try #require(answers.count == 1)
        #expect(answers[0].status == .payloadTooLarge)
        #expect(answers[0].closesConnection)
        #expect(connection.responder.requests.isEmpty)
        // The output closes; the body the client still sends is dropped while the connection lingers.
        #expect(connection.wire.outputClosed)
        try connection.send(String(repeating: "x", count: 100) + "GET /next HTTP/1.1\r\n\r\n")
        #expect(connection.wire.answers.count == 1)
        connection.advance(by: HTTPConnectionHandler.lingerTimeout - .milliseconds(1))
        #expect(connection.isOpen)
        connection.advance(by: .milliseconds(1))
        #expect(!connection.isOpen)
    }

    @Test func aBodyGrowingOverTheLimitIsRefused() throws {
        let connection = try TestConnection(maxBodyBytes: 10)
        try connection.send("POST /big HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n8\r\n12345678\r\n")
        #expect(connection.wire.answers.isEmpty)
        try connection.send("8\r\n12345678\r\n")
        #expect(connection.wire.answers.map(\.status) == [.payloadTooLarge])
        #expect(connection.responder.requests.isEmpty)
        #expect(connection.wire.outputClosed)
    }

    @Test func aRefusalFromTheHeadIsAnsweredWithoutReadingTheBody() throws {
        let connection = try TestConnection()
        try connection.send("POST /a HTTP/1.1\r\nx-refuse: yes\r\ncontent-length: 5\r\n\r\n")
        #expect(connection.responder.requests == ["POST /a  (refused)"])
        let answers = connection.wire.answers
        try #require(answers.count == 1)
        #expect(answers[0].status == .unauthorized)
        #expect(answers[0].closesConnection)
        #expect(connection.wire.outputClosed)
        try connection.send("hello")
        #expect(connection.responder.requests.count == 1)
        connection.advance(by: HTTPConnectionHandler.lingerTimeout)
        #expect(!connection.isOpen)
        #expect(connection.tracker.inFlight == 0)
    }

    @Test func bytesThatAreNotHTTPGetA400AndTheConnectionLingers() throws {
        let connection = try TestConnection()
        try connection.send("HELLO THERE\r\n\r\n")
        #expect(connection.wire.answers.map(\.status) == [.badRequest])
        #expect(connection.wire.answers.map(\.closesConnection) == [true])
        #expect(connection.wire.outputClosed)
        connection.advance(by: HTTPConnectionHandler.lingerTimeout)
        #expect(!connection.isOpen)
    }

    @Test func bytesAfterARequestThatAreNotHTTPGetA400AfterItsAnswer() throws {
        let connection = try TestConnection()
        try connection.send("GET /slow HTTP/1.1\r\n\r\nHELLO THERE\r\n\r\n")
        #expect(connection.isOpen)
        connection.responder.release()
        connection.run()
        #expect(connection.wire.answers.map(\.status) == [.ok, .badRequest])
        #expect(connection.wire.answers.map(\.closesConnection) == [false, true])
        #expect(connection.wire.outputClosed)
        connection.advance(by: HTTPConnectionHandler.lingerTimeout)
        #expect(!connection.isOpen)
    }

    @Test func theConnectionReadsOnWhileAnAnswerIsMadeUntilInputIsHeld() throws {
        let connection = try TestConnection()
        try connection.send("GET /slow HTTP/1.1\r\n\r\n")
        var reads = connection.wire.reads
        // Nothing held: the socket is read as usual (no system calls to stop and start it).
        connection.channel.read()
        #expect(connection.wire.reads == reads + 1)
        // A pipelined request arrives and is held: no more reads until it is taken.
        try connection.send("GET /next HTTP/1.1\r\n\r\n")
        #expect(connection.responder.requests == ["GET /slow "])
        reads = connection.wire.reads
        connection.channel.read()
        #expect(connection.wire.reads == reads)
        connection.responder.release()
        connection.run()
        #expect(connection.responder.requests == ["GET /slow ", "GET /next "])
        #expect(connection.wire.reads == reads + 1)  // the read held back, made once the held request was taken
    }

    @Test func theAnswerToAHeadRequestHasNoBody() throws {
        let connection = try TestConnection()
        try connection.send("HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        #expect(String(buffer: connection.wire.bytes).hasPrefix(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n\r\nHTTP/1.1 200 OK\r\n"))
        #expect(String(buffer: connection.wire.bytes).hasSuffix("content-length: 12\r\n\r\nanswer to /b"))
    }

    @Test func anAnswerWithAHeaderHTTPCannotCarryBecomesA500AndTheConnectionCloses() throws {
        let connection = try TestConnection()
        try connection.send("GET /bad-header HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        #expect(connection.wire.answers.map(\.status) == [.internalServerError])
        #expect(!connection.wire.answers.contains { $0.head.headers.contains(name: "x-injected") })
        #expect(!connection.isOpen)
        #expect(connection.responder.requests == ["GET /bad-header "])
    }

    // MARK: Streams

    @Test func aStreamIsWrittenEventByEvent() throws {
        let connection = try TestConnection()
        try connection.send("GET /stream HTTP/1.1\r\n\r\n")
        var answers = connection.wire.answers
        try #require(answers.count == 1)
        #expect(answers[0].head.headers["content-type"] == ["text/event-stream"])
        #expect(answers[0].head.headers["content-length"].isEmpty)
        #expect(answers[0].body.isEmpty)
        connection.responder.sendEvent("one")
        connection.run()
        #expect(connection.wire.answers[0].body == "data: one\n\n")
        connection.responder.sendEvent("two")
        connection.responder.endStream()
        connection.run()
        answers = connection.wire.answers
        #expect(answers[0].body == "data: one\n\ndata: two\n\n")
        #expect(answers[0].isComplete)
        #expect(connection.isOpen)
        #expect(connection.tracker.inFlight == 0)
    }

    @Test func aClientGoneMidStreamCancelsTheRequest() throws {
        let connection = try TestConnection()
        try connection.send("GET /stream HTTP/1.1\r\n\r\n")
        connection.responder.sendEvent("one")
        connection.run()
        #expect(connection.tracker.inFlight == 1)
        // The client leaves: the stream (and with it the upstream call) is cancelled.
        connection.clientLeaves()
        #expect(connection.responder.requests == ["GET /stream ", "stream cancelled"])
        #expect(connection.tracker.inFlight == 0)
        #expect(connection.wire.answers.map(\.isComplete) == [false])
    }

    // MARK: Drain

    @Test func drainingAnswersARequestOnItsWayWithConnectionCloseThenCloses() throws {
        let connection = try TestConnection()
        try connection.send("POST /a HTTP/1.1\r\ncontent-length: 5\r\n\r\nhel")
        connection.drain()
        #expect(connection.isOpen)
        try connection.send("lo")
        #expect(connection.responder.requests == ["POST /a hello"])
        #expect(connection.wire.answers.map(\.closesConnection) == [true])
        #expect(!connection.isOpen)
    }

    @Test func drainingClosesAnIdleKeepAliveConnectionAtOnce() throws {
        let connection = try TestConnection()
        try connection.send("GET /a HTTP/1.1\r\n\r\n")
        #expect(connection.isOpen)
        connection.drain()
        #expect(!connection.isOpen)
    }

    @Test func drainingClosesAfterAStreamInFlight() throws {
        let connection = try TestConnection()
        try connection.send("GET /stream HTTP/1.1\r\n\r\n")
        connection.drain()
        connection.responder.sendEvent("one")
        connection.responder.endStream()
        connection.run()
        #expect(connection.wire.answers.map(\.isComplete) == [true])
        #expect(!connection.isOpen)
    }

    @Test func drainingGivesAFreshConnectionAMomentForItsFirstRequest() throws {
        var connection = try TestConnection()
        connection.drain()
        connection.advance(by: HTTPConnectionHandler.drainGrace - .milliseconds(1))
        #expect(connection.isOpen)
        try connection.send("GET /a HTTP/1.1\r\n\r\n")
        #expect(connection.wire.answers.map(\.closesConnection) == [true])
        #expect(!connection.isOpen)

        connection = try TestConnection()
        connection.drain()
        connection.advance(by: HTTPConnectionHandler.drainGrace)
        #expect(!connection.isOpen)
    }

    // MARK: Timeouts

    @Test func anIdleKeepAliveConnectionClosesAfterTheIdleTimeout() throws {
        let connection = try TestConnection(idle: .seconds(5), request: .seconds(2))
        connection.advance(by: .milliseconds(500))
        try connection.send("GET /a HTTP/1.1\r\n\r\n")
        connection.advance(by: .seconds(5) - .milliseconds(1))
        #expect(connection.isOpen)
        connection.advance(by: .milliseconds(1))
        #expect(!connection.isOpen)
    }

    @Test func noIdleTimeoutRunsWhileAnswering() throws {
        let connection = try TestConnection(idle: .seconds(5), request: .seconds(2))
        try connection.send("GET /stream HTTP/1.1\r\n\r\n")
        connection.advance(by: .seconds(60))
        #expect(connection.isOpen)
        connection.responder.endStream()
        connection.run()
        #expect(connection.wire.answers.map(\.isComplete) == [true])
    }

    @Test func theFirstRequestMustBeReadWithinTheRequestTimeoutOfTheAccept() throws {
        let connection = try TestConnection(idle: .seconds(5), request: .seconds(2))
        connection.advance(by: .seconds(1))
        // Trickling the head does not extend it.
        try connection.send("GET /a HT")
        connection.advance(by: .milliseconds(999))
        #expect(connection.isOpen)
        connection.advance(by: .milliseconds(1))
        #expect(!connection.isOpen)
        #expect(connection.wire.answers.isEmpty)
    }

    @Test func aLaterRequestMustBeReadWithinTheRequestTimeoutOfItsFirstByte() throws {
        let connection = try TestConnection(idle: .seconds(5), request: .seconds(2))
        try connection.send("GET /a HTTP/1.1\r\n\r\n")
        connection.advance(by: .seconds(4))
        try connection.send("GET /b HT")
        // The idle deadline (5 s) has passed; the request's (4 + 2 s) has not.
        connection.advance(by: .milliseconds(1999))
        #expect(connection.isOpen)
        try connection.send("TP/1.1\r\n\r\n")
        #expect(connection.wire.answers.count == 2)
        #expect(connection.isOpen)
        // Answered: the idle timeout runs again.
        connection.advance(by: .seconds(5))
        #expect(!connection.isOpen)
    }

    @Test func aRequestTrickledPastItsTimeoutClosesTheConnection() throws {
        let connection = try TestConnection(idle: .seconds(5), request: .seconds(2))
        try connection.send("GET /a HTTP/1.1\r\n\r\n")
        try connection.send("POST /b HTTP/1.1\r\ncontent-length: 5\r\n\r\nhe")
        connection.advance(by: .seconds(2))
        #expect(!connection.isOpen)
        #expect(connection.responder.requests == ["GET /a "])
    }

    // MARK: Half-close

    @Test func aHalfClosedClientStillGetsItsAnswerAfterAProbe() throws {
        let connection = try TestConnection()
        try connection.send("GET /slow HTTP/1.1\r\n\r\n")
        connection.halfClose()
        // A 100 (Continue) tells a client that only stopped sending from one that left.
        #expect(connection.wire.interimStatuses == [.continue])
        #expect(connection.isOpen)
        connection.responder.release()
        connection.run()
        #expect(connection.wire.answers.map(\.body) == ["slow answer"])
        #expect(!connection.isOpen)
    }

    @Test func aClientThatLeftIsFoundByTheProbeAndItsRequestCancelled() throws {
        let connection = try TestConnection()
        try connection.send("GET /slow HTTP/1.1\r\n\r\n")
        connection.halfClose()
        #expect(connection.wire.interimStatuses == [.continue])
        // A closed socket answers the probe with a reset, which closes the channel.
        connection.clientLeaves()
        #expect(connection.responder.requests == ["GET /slow ", "slow cancelled"])
        #expect(connection.tracker.inFlight == 0)
        #expect(connection.wire.answers.isEmpty)
    }

    @Test func aHalfCloseAfterTheAnswerBeganIsNotProbed() throws {
        let connection = try TestConnection()
        try connection.send("GET /stream HTTP/1.1\r\n\r\n")
        connection.halfClose()
        #expect(connection.wire.interimStatuses.isEmpty)
        connection.responder.endStream()
        connection.run()
        #expect(connection.wire.answers.map(\.isComplete) == [true])
        #expect(!connection.isOpen)
    }

    @Test func aHalfCloseWithoutAWholeRequestCloses() throws {
        var connection = try TestConnection()
        connection.halfClose()
        #expect(!connection.isOpen)

        connection = try TestConnection()
        try connection.send("POST /a HTTP/1.1\r\ncontent-length: 5\r\n\r\nhe")
        connection.halfClose()
        // The parser reports the body cut short, which is answered as bytes that are not HTTP.
        #expect(connection.wire.answers.map(\.status) == [.badRequest])
        #expect(!connection.isOpen)
        #expect(connection.responder.requests.isEmpty)

        connection = try TestConnection()
        try connection.send("GET /a HTTP/1.1\r\n\r\n")
        connection.halfClose()
        #expect(!connection.isOpen)
    }
}

/// A connection as `HTTPServer` builds it, on an `EmbeddedChannel`. The request tasks run on the
/// channel's loop too (through `EventLoopTaskExecutor`, as in production), so each step runs the
/// loop until nothing is left to do, on the test's one thread.
final class TestConnection {
    let channel = EmbeddedChannel()
    let wire = WireRecorder()
    let responder: StubResponder
    let tracker = RequestTracker()

    init(maxBodyBytes: Int = 64, idle: TimeAmount = .seconds(60), request: TimeAmount = .seconds(10)) throws {
        responder = StubResponder(maxBodyBytes: maxBodyBytes)
        let pipeline = channel.pipeline.syncOperations
        let handler = HTTPConnectionHandler(responder: responder, tracker: tracker, idleTimeout: idle, requestTimeout: request)
        try pipeline.addHTTPConnectionHandlers(handler)
        try pipeline.addHandler(wire, position: .first)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
    }

    var isOpen: Bool { channel.isActive }

    func run() { channel.embeddedEventLoop.run() }

    func send(_ bytes: String) throws {
        try channel.writeInbound(ByteBuffer(string: bytes))
        run()
    }

    func advance(by time: TimeAmount) { channel.embeddedEventLoop.advanceTime(by: time) }

    func drain() {
        channel.pipeline.syncOperations.fireUserInboundEventTriggered(DrainEvent())
        run()
    }

    /// The client shuts its sending side (TCP half-close).
    func halfClose() {
        channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        run()
    }

    /// The client is gone: the socket reports it and the channel closes.
    func clientLeaves() {
        channel.close(promise: nil)
        run()
    }
}

/// Records the bytes written, as they reach the socket, and stands in for the socket's output
/// shutdown, which `EmbeddedChannel` would turn into a full close.
final class WireRecorder: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var bytes = ByteBuffer()
    /// How many writes reached the socket.
    private(set) var writes = 0
    private(set) var outputClosed = false
    /// How many reads the connection asked the socket for.
    private(set) var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // As on a socket, nothing written after the close reaches the wire.
        guard context.channel.isActive else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var buffer = Self.unwrapOutboundIn(data)
        bytes.writeBuffer(&buffer)
        writes += 1
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output else { return context.close(mode: mode, promise: promise) }
        outputClosed = true
        promise?.succeed()
    }

    /// The final answers written, in order.
    var answers: [WrittenAnswer] { WrittenAnswer.parse(bytes).answers }
    /// The statuses of the interim (1xx) answers written.
    var interimStatuses: [HTTPResponseStatus] { WrittenAnswer.parse(bytes).interim.map(\.status) }
}

/// A final answer as written: its head, the body so far, and whether its end was written.
struct WrittenAnswer {
    var head: HTTPResponseHead
    var body = ""
    var isComplete = false

    var status: HTTPResponseStatus { head.status }
    var closesConnection: Bool { head.headers["connection"].contains("close") }

    /// Reads answers from the bytes as a client would (RFC 9112): a head, then a body framed by
    /// `content-length` or in chunks, or none for a 1xx; a chunked body is complete at its last chunk.
    static func parse(_ wire: ByteBuffer) -> (answers: [WrittenAnswer], interim: [HTTPResponseHead]) {
        var answers: [WrittenAnswer] = [], interim: [HTTPResponseHead] = []
        var rest = ArraySlice(wire.readableBytesView)
        func line() -> String? {
            guard let end = rest.indices.first(where: { rest[$0] == UInt8(ascii: "\r") && rest.index(after: $0) < rest.endIndex
                                                        && rest[rest.index(after: $0)] == UInt8(ascii: "\n") }) else { return nil }
            defer { rest = rest[(end + 2)...] }
            return String(decoding: rest[..<end], as: UTF8.self)
        }
        func take(_ count: Int) -> String {
            defer { rest = rest.dropFirst(count) }
            return String(decoding: rest.prefix(count), as: UTF8.self)
        }
        while let statusLine = line() {
            let status = statusLine.split(separator: " ", maxSplits: 2)
            var headers = HTTPHeaders()
            while let header = line(), !header.isEmpty {
                let colon = header.firstIndex(of: ":")!
                headers.add(name: String(header[..<colon]), value: header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            let head = HTTPResponseHead(version: status[0] == "HTTP/1.0" ? .http1_0 : .http1_1,
                                        status: HTTPResponseStatus(statusCode: Int(status[1])!), headers: headers)
            if head.status.code < 200 {
                interim.append(head)
                continue
            }
            var answer = WrittenAnswer(head: head)
            if let length = headers.first(name: "content-length").flatMap(Int.init) {
                answer.isComplete = rest.count >= length
                answer.body = take(length)
            } else if headers.first(name: "transfer-encoding") == "chunked" {
                while let sizeLine = line(), let size = Int(sizeLine, radix: 16) {
                    if size == 0 {
                        answer.isComplete = line() == ""
                        break
                    }
                    answer.body += take(size)
                    _ = line()
                }
            } else {
                answer.body = take(rest.count)
            }
            answers.append(answer)
        }
        return (answers, interim)
    }
}

/// A responder whose answers the test holds: `/stream` answers with the events the test sends,
/// `/slow` waits until the test releases it, any other path at once; a head with `x-refuse` is
/// refused. It records each request ("METHOD path body") and each cancellation it sees.
final class StubResponder: HTTPResponder {
    let maxBodyBytes: Int
    private let log = Mutex<[String]>([])
    private let streams = Mutex<[AsyncStream<SSEEvent>.Continuation]>([])
    private let gates = Mutex<[AsyncStream<Void>.Continuation]>([])

    init(maxBodyBytes: Int) { self.maxBodyBytes = maxBodyBytes }

    var requests: [String] { log.withLock { $0 } }
    private func record(_ entry: String) { log.withLock { $0.append(entry) } }

    func sendEvent(_ data: String) { streams.withLock { $0.last }?.yield(SSEEvent(data: data)) }
    func endStream() { streams.withLock { $0.last }?.finish() }
    func release() { gates.withLock { $0.removeFirst() }.finish() }

    func screen(_ head: HTTPRequestHead) -> RequestScreening {
        RequestScreening(generation: nil, verdicts: head.headers.contains(name: "x-refuse") ? [.refused(.authentication("no key"))] : [])
    }

    func respond(to head: HTTPRequestHead, body: ByteBuffer, screening: RequestScreening) async -> GatewayResponse {
        record("\(head.method.rawValue) \(head.uri) \(String(buffer: body))" + (screening.isRefused ? " (refused)" : ""))
        if screening.isRefused { return Self.answer(.unauthorized, "no key") }
        switch head.uri {
        case "/stream":
            let (events, continuation) = AsyncStream<SSEEvent>.makeStream()
            continuation.onTermination = { [self] termination in
                if case .cancelled = termination { record("stream cancelled") }
            }
            streams.withLock { $0.append(continuation) }
            return GatewayResponse(body: .events(EventStream(events)))
        case "/bad-header":
            return GatewayResponse(headers: ["x-bad": "a\r\nx-injected: 1"], body: .whole(ByteBuffer(string: "x")))
        case "/slow":
            let (gate, continuation) = AsyncStream<Void>.makeStream()
            gates.withLock { $0.append(continuation) }
            for await _ in gate {}
            if Task.isCancelled { record("slow cancelled") }
            return Self.answer(.ok, "slow answer")
        default:
            return Self.answer(.ok, "answer to \(head.uri)")
        }
    }

    func bodyTooLarge(_ head: HTTPRequestHead) -> GatewayResponse { Self.answer(.payloadTooLarge, "too large") }
    func malformedRequest(_ reason: String) -> GatewayResponse { Self.answer(.badRequest, "malformed: \(reason)") }
    func tooManyConnections() -> GatewayResponse { Self.answer(.serviceUnavailable, "too many connections") }

    static func answer(_ status: HTTPResponseStatus, _ text: String) -> GatewayResponse {
        GatewayResponse(status: status, headers: ["content-type": "text/plain"], body: .whole(ByteBuffer(string: text)))
    }
}
