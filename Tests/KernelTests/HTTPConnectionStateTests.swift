import NIOCore
import NIOHTTP1
import Testing
@testable import Kernel

/// Every decision of a connection, without a channel: the events `HTTPConnectionHandler` reports
/// and the actions it is told to take (docs/ARCHITECTURE.md, "What a request may cost").
@Suite struct HTTPConnectionStateTests {
    /// An action as the tests compare it: what it asks for, without the values that cannot be compared.
    enum Step: Equatable {
        case none
        case screen(String)
        case respond(String, body: String, keepAlive: Bool, number: Int, refused: Bool)
        case refuseTooLarge(String, HTTPVersion)
        case refuseMalformed(HTTPVersion)
        case probe(HTTPVersion)
        case watchForNextRequest
        case closeOutput
        case close

        init(_ action: HTTPConnectionState.Action) {
            switch action {
            case .none: self = .none
            case .screen(let head): self = .screen(head.uri)
            case .respond(let head, let body, let screening, let keepAlive, let number):
                self = .respond(head.uri, body: String(buffer: body), keepAlive: keepAlive, number: number, refused: screening.isRefused)
            case .refuse(.bodyTooLarge(let head), let version): self = .refuseTooLarge(head.uri, version)
            case .refuse(.malformed, let version): self = .refuseMalformed(version)
            case .probeClient(let version): self = .probe(version)
            case .watchForNextRequest: self = .watchForNextRequest
            case .closeOutput: self = .closeOutput
            case .close: self = .close
            }
        }
    }

    static let timeouts = HTTPConnectionState.Timeouts(idle: .seconds(60), request: .seconds(10), linger: .seconds(2),
                                                       drainGrace: .seconds(1))
    static let admitted = RequestScreening(generation: nil, verdicts: [])
    static let refused = RequestScreening(generation: nil, verdicts: [.refused(.authentication("no key"))])
    let allocator = ByteBufferAllocator()

    /// Time in seconds after an arbitrary start.
    func at(_ seconds: Double) -> NIODeadline { .uptimeNanoseconds(1_000_000_000) + .nanoseconds(Int64(seconds * 1e9)) }

    func head(_ uri: String, _ headers: HTTPHeaders = [:], version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .POST, uri: uri, headers: headers)
    }

    /// A fresh connection accepted at 0 s.
    func accepted(_ timeouts: HTTPConnectionState.Timeouts = HTTPConnectionStateTests.timeouts) -> HTTPConnectionState {
        var state = HTTPConnectionState(timeouts: timeouts)
        state.accepted(now: at(0))
        return state
    }

    /// Sends one request whole (head, screening, body, end) and returns the step its end asks for.
    func request(_ state: inout HTTPConnectionState, _ head: HTTPRequestHead, body: String = "", at now: NIODeadline,
                 screening: RequestScreening = HTTPConnectionStateTests.admitted) -> Step {
        let screen = Step(state.receivedHead(head, maxBodyBytes: 100, now: now))
        guard case .screen = screen else { return screen }
        let screened = Step(state.screened(screening, allocator: allocator))
        guard screened == .none else { return screened }
        if !body.isEmpty { #expect(Step(state.receivedBody(ByteBuffer(string: body), maxBodyBytes: 100)) == .none) }
        return Step(state.receivedEnd())
    }

    /// A connection that answered one request and waits for the next since `finishedAt`.
    func afterOneAnswer(finishedAt: Double = 1) -> HTTPConnectionState {
        var state = accepted()
        #expect(request(&state, head("/one"), at: at(0.5)) == .respond("/one", body: "", keepAlive: true, number: 1, refused: false))
        #expect(Step(state.answerFinished(number: 1, reusable: true, now: at(finishedAt))) == .watchForNextRequest)
        return state
    }

    // MARK: Accept and the first request

    @Test func theFirstRequestIsBoundedFromTheAccept() {
        let state = accepted()
        #expect(state.deadline == .init(kind: .request, at: at(10)))
        // And by the idle timeout when that is shorter: a request must begin within it.
        let short = accepted(.init(idle: .seconds(3), request: .seconds(10), linger: .seconds(2), drainGrace: .seconds(1)))
        #expect(short.deadline == .init(kind: .request, at: at(3)))
    }

    @Test func itsFirstBytesDoNotExtendTheAcceptsDeadline() {
        var state = accepted()
        state.requestBytesBegan(now: at(9))
        #expect(Step(state.receivedHead(head("/a"), maxBodyBytes: 100, now: at(9.5))) == .screen("/a"))
        #expect(state.deadline == .init(kind: .request, at: at(10)))
    }

    @Test func aRequestIsScreenedFromItsHeadThenReadThenAnswered() {
        var state = accepted()
        #expect(Step(state.receivedHead(head("/a", ["content-length": "8"]), maxBodyBytes: 100, now: at(1))) == .screen("/a"))
        guard case .screening = state.phase else { Issue.record("\(state.phase)"); return }
        #expect(Step(state.screened(Self.admitted, allocator: allocator)) == .none)
        guard case .receiving = state.phase else { Issue.record("\(state.phase)"); return }
        #expect(Step(state.receivedBody(ByteBuffer(string: "1234"), maxBodyBytes: 100)) == .none)
        #expect(Step(state.receivedBody(ByteBuffer(string: "5678"), maxBodyBytes: 100)) == .none)
        #expect(state.deadline == .init(kind: .request, at: at(10)))
        #expect(Step(state.receivedEnd()) == .respond("/a", body: "12345678", keepAlive: true, number: 1, refused: false))
        guard case .answering = state.phase else { Issue.record("\(state.phase)"); return }
        // No deadline while answering: a stream may run for minutes.
        #expect(state.deadline == nil)
        #expect(state.requestNumber == 1)
    }

    @Test func theBodyBufferIsSizedByTheDeclaredLengthWithinTheLimit() {
        for (length, capacity) in [("100", 100), ("7", 7), ("-5", 0), ("not a number", 0)] {
            var state = accepted()
            #expect(Step(state.receivedHead(head("/a", ["content-length": length]), maxBodyBytes: 100, now: at(1))) == .screen("/a"))
            guard case .screening(_, let bodyCapacity) = state.phase else { Issue.record("\(state.phase)"); continue }
            #expect(bodyCapacity == capacity, "content-length: \(length)")
        }
    }

    // MARK: Refusals

    @Test func aDeclaredBodyOverTheLimitIsRefusedBeforeItIsReadOrScreened() {
        var state = accepted()
        #expect(Step(state.receivedHead(head("/big", ["content-length": "101"], version: .http1_0), maxBodyBytes: 100, now: at(1)))
            == .refuseTooLarge("/big", .http1_0))
        guard case .refusing = state.phase else { Issue.record("\(state.phase)"); return }
        #expect(state.deadline == nil)
        // The rest of the request is dropped.
        #expect(Step(state.receivedBody(ByteBuffer(string: "x"), maxBodyBytes: 100)) == .none)
        #expect(Step(state.receivedEnd()) == .none)
    }

    @Test func aBodyGrowingOverTheLimitIsRefused() {
        var state = accepted()
        _ = state.receivedHead(head("/big"), maxBodyBytes: 100, now: at(1))
        _ = state.screened(Self.admitted, allocator: allocator)
        #expect(Step(state.receivedBody(ByteBuffer(repeating: 0, count: 60), maxBodyBytes: 100)) == .none)
        #expect(Step(state.receivedBody(ByteBuffer(repeating: 0, count: 41), maxBodyBytes: 100)) == .refuseTooLarge("/big", .http1_1))
        #expect(Step(state.receivedBody(ByteBuffer(repeating: 0, count: 41), maxBodyBytes: 100)) == .none)
        #expect(state.requestNumber == 0)
    }

    @Test func aRefusalLingersThenCloses() {
        var state = accepted()
        _ = state.receivedHead(head("/big", ["content-length": "101"]), maxBodyBytes: 100, now: at(1))
        #expect(Step(state.refusalWritten(now: at(1.5))) == .closeOutput)
        guard case .lingering = state.phase else { Issue.record("\(state.phase)"); return }
        #expect(state.deadline == .init(kind: .linger, at: at(3.5)))
        // Whatever still arrives is dropped; a second report changes nothing; the linger is not extended.
        #expect(Step(state.receivedHead(head("/next"), maxBodyBytes: 100, now: at(2))) == .none)
        #expect(Step(state.receivedBody(ByteBuffer(string: "x"), maxBodyBytes: 100)) == .none)
        #expect(Step(state.refusalWritten(now: at(2))) == .none)
        state.requestBytesBegan(now: at(2))
        #expect(state.deadline == .init(kind: .linger, at: at(3.5)))
        #expect(Step(state.parserFailed(reason: "junk")) == .none)
        #expect(Step(state.deadlineCheck(now: at(3.4))) == .none)
        #expect(Step(state.deadlineCheck(now: at(3.5))) == .close)
        guard case .closed = state.phase else { Issue.record("\(state.phase)"); return }
        #expect(state.deadline == nil)
    }

    @Test func theClientClosingDuringTheLingerClosesTheConnection() {
        var state = accepted()
        _ = state.receivedHead(head("/big", ["content-length": "101"]), maxBodyBytes: 100, now: at(1))
        _ = state.refusalWritten(now: at(1))
        #expect(Step(state.inputClosed()) == .close)
    }

    @Test func aRefusalFromTheHeadIsAnsweredWithoutItsBody() {
        var state = accepted()
        #expect(Step(state.receivedHead(head("/a", ["content-length": "5"]), maxBodyBytes: 100, now: at(1))) == .screen("/a"))
        #expect(Step(state.screened(Self.refused, allocator: allocator))
            == .respond("/a", body: "", keepAlive: false, number: 1, refused: true))
        guard case .refusing = state.phase else { Issue.record("\(state.phase)"); return }
        #expect(state.deadline == nil)
        #expect(Step(state.receivedBody(ByteBuffer(string: "hello"), maxBodyBytes: 100)) == .none)
        #expect(Step(state.receivedEnd()) == .none)
        // Whether or not it was written whole, the connection lingers after it.
        #expect(Step(state.answerFinished(number: 1, reusable: false, now: at(2))) == .closeOutput)
        #expect(state.deadline == .init(kind: .linger, at: at(4)))
    }

    @Test func bytesThatAreNotHTTPGetA400() {
        for phase in ["fresh", "idle", "receiving"] {
            var state = phase == "idle" ? afterOneAnswer() : accepted()
            if phase == "receiving" {
                _ = state.receivedHead(head("/a"), maxBodyBytes: 100, now: at(1))
                _ = state.screened(Self.admitted, allocator: allocator)
            }
            #expect(Step(state.parserFailed(reason: "invalid method")) == .refuseMalformed(.http1_1), "\(phase)")
            #expect(state.deadline == nil)
            #expect(Step(state.refusalWritten(now: at(5))) == .closeOutput)
        }
    }

    @Test func bytesAfterARequestThatAreNotHTTPAreRefusedAfterItsAnswer() {
        var state = accepted()
        _ = request(&state, head("/a"), at: at(1))
        #expect(state.holdsInput)
        state.hold(.parserFailed(reason: "junk"))
        #expect(state.nextHeld() == nil)
        #expect(Step(state.answerFinished(number: 1, reusable: true, now: at(2))) == .watchForNextRequest)
        guard case .parserFailed(let reason) = state.nextHeld() else { Issue.record("nothing held"); return }
        #expect(Step(state.parserFailed(reason: reason)) == .refuseMalformed(.http1_1))
        #expect(!state.holdsInput)
    }

    // MARK: Keep-alive and pipelining

    @Test func anAnsweredConnectionWaitsForTheNextRequestWithinTheIdleTimeout() {
        var state = afterOneAnswer(finishedAt: 1)
        guard case .awaitingRequest = state.phase else { Issue.record("\(state.phase)"); return }
        #expect(state.deadline == .init(kind: .idle, at: at(61)))
        #expect(Step(state.deadlineCheck(now: at(60))) == .none)
        #expect(Step(state.deadlineCheck(now: at(61))) == .close)
    }

    @Test func theNextRequestsFirstByteStartsItsRequestTimeout() {
        var state = afterOneAnswer(finishedAt: 1)
        state.requestBytesBegan(now: at(30))
        #expect(state.deadline == .init(kind: .request, at: at(40)))
        // The head arriving later does not extend it.
        #expect(Step(state.receivedHead(head("/two"), maxBodyBytes: 100, now: at(35))) == .screen("/two"))
        #expect(state.deadline == .init(kind: .request, at: at(40)))
        #expect(Step(state.screened(Self.admitted, allocator: allocator)) == .none)
        #expect(Step(state.deadlineCheck(now: at(40))) == .close)
    }

    @Test func aHeadTheWatchMissedStartsTheRequestTimeoutItself() {
        var state = afterOneAnswer(finishedAt: 1)
        #expect(Step(state.receivedHead(head("/two"), maxBodyBytes: 100, now: at(30))) == .screen("/two"))
        #expect(state.deadline == .init(kind: .request, at: at(40)))
    }

    @Test func requestsAreNumberedAndKeepAliveFollowsTheClient() {
        var state = afterOneAnswer()
        #expect(request(&state, head("/two", ["connection": "close"]), at: at(2))
            == .respond("/two", body: "", keepAlive: false, number: 2, refused: false))
        // The writer reports an answer with `connection: close` as not reusable.
        #expect(Step(state.answerFinished(number: 2, reusable: false, now: at(3))) == .close)
    }

    @Test func http10IsNotKeptAliveUnlessAsked() {
        var state = accepted()
        #expect(request(&state, head("/a", version: .http1_0), at: at(1)) == .respond("/a", body: "", keepAlive: false, number: 1, refused: false))
        state = accepted()
        #expect(request(&state, head("/a", ["connection": "keep-alive"], version: .http1_0), at: at(1))
            == .respond("/a", body: "", keepAlive: true, number: 1, refused: false))
    }

    @Test func aFailedAnswerClosesTheConnection() {
        var state = accepted()
        _ = request(&state, head("/a"), at: at(1))
        #expect(Step(state.answerFinished(number: 1, reusable: false, now: at(2))) == .close)
        guard case .closed = state.phase else { Issue.record("\(state.phase)"); return }
    }

    /// Takes held input as the handler does, and returns the steps it asked for.
    func takeHeld(_ state: inout HTTPConnectionState, now: NIODeadline) -> [Step] {
        var steps: [Step] = []
        while let input = state.nextHeld() {
            let step: Step = switch input {
            case .part(.head(let head)): Step(state.receivedHead(head, maxBodyBytes: 100, now: now))
            case .part(.body(let chunk)): Step(state.receivedBody(chunk, maxBodyBytes: 100))
            case .part(.end): Step(state.receivedEnd())
            case .parserFailed(let reason): Step(state.parserFailed(reason: reason))
            case .inputClosed: Step(state.inputClosed())
            }
            steps.append(step)
            if case .screen = step { steps.append(Step(state.screened(Self.admitted, allocator: allocator))) }
        }
        return steps
    }

    @Test func pipelinedRequestsAreHeldWhileAnsweringAndTakenInOrder() {
        var state = accepted()
        #expect(!state.holdsInput)
        _ = request(&state, head("/one"), at: at(1))
        #expect(state.holdsInput)
        for input: HTTPConnectionState.Input in [.part(.head(head("/two", ["content-length": "3"]))), .part(.body(ByteBuffer(string: "abc"))),
                                                 .part(.end(nil)), .part(.head(head("/three"))), .part(.end(nil))] {
            state.hold(input)
        }
        // Nothing is given back while answer 1 is made, and no request timeout runs meanwhile.
        #expect(state.nextHeld() == nil)
        state.requestBytesBegan(now: at(1.5))
        #expect(state.deadline == nil)
        #expect(Step(state.answerFinished(number: 1, reusable: true, now: at(2))) == .watchForNextRequest)
        #expect(takeHeld(&state, now: at(2))
            == [.screen("/two"), .none, .none, .respond("/two", body: "abc", keepAlive: true, number: 2, refused: false)])
        #expect(state.holdsInput)  // "/three" waits for answer 2
        #expect(Step(state.answerFinished(number: 2, reusable: true, now: at(3))) == .watchForNextRequest)
        #expect(takeHeld(&state, now: at(3)) == [.screen("/three"), .none, .respond("/three", body: "", keepAlive: true, number: 3, refused: false)])
        #expect(!state.isHoldingInput)
        #expect(Step(state.answerFinished(number: 3, reusable: true, now: at(4))) == .watchForNextRequest)
        #expect(state.deadline == .init(kind: .idle, at: at(64)))
    }

    @Test func aHalfCloseAfterPipelinedRequestsIsTakenRightAfterTheLast() {
        var state = accepted()
        _ = request(&state, head("/one"), at: at(1))
        state.hold(.part(.head(head("/two"))))
        state.hold(.part(.end(nil)))
        state.hold(.inputClosed)
        #expect(Step(state.answerFinished(number: 1, reusable: true, now: at(2))) == .watchForNextRequest)
        // Request 2 is answered, as the last: its answer has not begun, so the client is probed.
        #expect(takeHeld(&state, now: at(2))
            == [.screen("/two"), .none, .respond("/two", body: "", keepAlive: true, number: 2, refused: false), .probe(.http1_1)])
        #expect(!state.acceptsMoreRequests)
        #expect(Step(state.answerFinished(number: 2, reusable: true, now: at(3))) == .close)
    }

    @Test func aLateFailedReportClosesEvenWhenTheNextRequestHasBegun() {
        var state = afterOneAnswer()
        _ = request(&state, head("/two"), at: at(2))
        #expect(Step(state.answerFinished(number: 1, reusable: false, now: at(3))) == .close)
    }

    @Test func aPipelinedHeadOverTheLimitIsRefusedInItsTurn() {
        var state = accepted()
        _ = request(&state, head("/one"), at: at(1))
        state.hold(.part(.head(head("/big", ["content-length": "101"]))))
        state.hold(.part(.body(ByteBuffer(string: "x"))))
        state.hold(.part(.head(head("/after"))))
        #expect(Step(state.answerFinished(number: 1, reusable: true, now: at(2))) == .watchForNextRequest)
        // What follows the refused request is dropped.
        #expect(takeHeld(&state, now: at(2)) == [.refuseTooLarge("/big", .http1_1), .none, .none])
        #expect(Step(state.refusalWritten(now: at(3))) == .closeOutput)
    }

    @Test func closingDropsWhatIsHeld() {
        var state = accepted()
        _ = request(&state, head("/one"), at: at(1))
        state.hold(.part(.head(head("/two"))))
        state.closed()
        #expect(!state.holdsInput)
        #expect(state.nextHeld() == nil)
    }

    @Test func partsOutOfOrderCloseTheConnection() {
        var state = accepted()
        #expect(Step(state.receivedBody(ByteBuffer(string: "x"), maxBodyBytes: 100)) == .close)
        state = accepted()
        #expect(Step(state.receivedEnd()) == .close)
        state = accepted()
        _ = state.receivedHead(head("/a"), maxBodyBytes: 100, now: at(1))
        _ = state.screened(Self.admitted, allocator: allocator)
        #expect(Step(state.receivedHead(head("/b"), maxBodyBytes: 100, now: at(1))) == .close)
        state = accepted()
        _ = request(&state, head("/a"), at: at(1))
        #expect(Step(state.receivedHead(head("/b"), maxBodyBytes: 100, now: at(1))) == .close)  // held while answering, never taken
        state = accepted()
        _ = request(&state, head("/a"), at: at(1))
        #expect(Step(state.parserFailed(reason: "junk")) == .close)
        state = accepted()
        #expect(Step(state.screened(Self.admitted, allocator: allocator)) == .close)
    }

    // MARK: Drain

    @Test func drainingClosesAnIdleKeepAliveConnectionAtOnce() {
        var state = afterOneAnswer()
        #expect(Step(state.drain(now: at(5))) == .close)
    }

    @Test func drainingGivesAFreshConnectionAMomentForItsFirstRequest() {
        var state = accepted()
        #expect(Step(state.drain(now: at(5))) == .none)
        #expect(state.deadline == .init(kind: .request, at: at(6)))
        // A request that arrives in time is answered, with `connection: close`, and is the last.
        #expect(request(&state, head("/a"), at: at(5.5)) == .respond("/a", body: "", keepAlive: false, number: 1, refused: false))
        #expect(Step(state.answerFinished(number: 1, reusable: false, now: at(7))) == .close)
        state = accepted()
        _ = state.drain(now: at(5))
        #expect(Step(state.deadlineCheck(now: at(6))) == .close)
    }

    @Test func drainingWhileARequestIsReadAnswersItWithConnectionClose() {
        var state = accepted()
        _ = state.receivedHead(head("/a"), maxBodyBytes: 100, now: at(1))
        _ = state.screened(Self.admitted, allocator: allocator)
        #expect(Step(state.drain(now: at(2))) == .none)
        #expect(Step(state.receivedEnd()) == .respond("/a", body: "", keepAlive: false, number: 1, refused: false))
        #expect(Step(state.answerFinished(number: 1, reusable: false, now: at(3))) == .close)
    }

    @Test func drainingWhileAnsweringClosesAfterTheAnswer() {
        var state = accepted()
        #expect(request(&state, head("/a"), at: at(1)) == .respond("/a", body: "", keepAlive: true, number: 1, refused: false))
        #expect(Step(state.drain(now: at(2))) == .none)
        // The answer began keep-alive; it is still the last.
        #expect(Step(state.answerFinished(number: 1, reusable: true, now: at(3))) == .close)
    }

    // MARK: Half-close

    @Test func aHalfCloseBeforeTheAnswerBeginsIsProbed() {
        var state = accepted()
        _ = request(&state, head("/a"), at: at(1))
        #expect(Step(state.inputClosed()) == .probe(.http1_1))
        #expect(!state.acceptsMoreRequests)
        // The answer is still written, and is the last.
        state.answerHeadWritten(number: 1)
        #expect(Step(state.answerFinished(number: 1, reusable: true, now: at(2))) == .close)
    }

    @Test func aHalfCloseAfterTheAnswerBeganIsNotProbed() {
        var state = accepted()
        _ = request(&state, head("/a"), at: at(1))
        state.answerHeadWritten(number: 1)
        #expect(Step(state.inputClosed()) == .none)
    }

    @Test func http10HasNoProbe() {
        var state = accepted()
        _ = request(&state, head("/a", version: .http1_0), at: at(1))
        #expect(Step(state.inputClosed()) == .none)
    }

    @Test func aHalfCloseDuringARefusalFromTheHeadIsProbed() {
        var state = accepted()
        _ = request(&state, head("/a"), at: at(1), screening: Self.refused)
        #expect(Step(state.inputClosed()) == .probe(.http1_1))
    }

    @Test func aHalfCloseAfterARefusalWasWrittenIsNotProbed() {
        // The refusal's answer is written at once: a 1xx after it would not be HTTP.
        var state = accepted()
        _ = state.receivedHead(head("/big", ["content-length": "101"]), maxBodyBytes: 100, now: at(1))
        #expect(Step(state.inputClosed()) == .none)
    }

    @Test func aHalfCloseWithoutAWholeRequestCloses() {
        var state = accepted()
        #expect(Step(state.inputClosed()) == .close)
        state = afterOneAnswer()
        #expect(Step(state.inputClosed()) == .close)
        state = accepted()
        _ = state.receivedHead(head("/a"), maxBodyBytes: 100, now: at(1))
        _ = state.screened(Self.admitted, allocator: allocator)
        #expect(Step(state.inputClosed()) == .close)
    }

    // MARK: Deadlines and closing

    @Test func aCheckBeforeAMovedDeadlineDoesNothing() {
        var state = afterOneAnswer(finishedAt: 1)
        #expect(Step(state.deadlineCheck(now: at(10))) == .none)
        #expect(state.deadline == .init(kind: .idle, at: at(61)))
    }

    @Test func aClosedConnectionIgnoresEverything() {
        var state = accepted()
        _ = request(&state, head("/a"), at: at(1))
        state.closed()
        #expect(state.deadline == nil)
        #expect(Step(state.receivedHead(head("/b"), maxBodyBytes: 100, now: at(2))) == .none)
        #expect(Step(state.receivedBody(ByteBuffer(string: "x"), maxBodyBytes: 100)) == .none)
        #expect(Step(state.receivedEnd()) == .none)
        #expect(Step(state.answerFinished(number: 1, reusable: false, now: at(2))) == .none)
        #expect(Step(state.refusalWritten(now: at(2))) == .none)
        #expect(Step(state.inputClosed()) == .none)
        #expect(Step(state.parserFailed(reason: "x")) == .none)
        #expect(Step(state.drain(now: at(2))) == .none)
        state.requestBytesBegan(now: at(2))
        #expect(state.deadline == nil)
        #expect(Step(state.deadlineCheck(now: at(100))) == .none)
    }
}
