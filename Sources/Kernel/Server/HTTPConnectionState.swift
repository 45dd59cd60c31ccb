import NIOCore
import NIOHTTP1

/// What one connection has read and answered, and what it must do next: every decision of
/// `HTTPConnectionHandler`, kept apart from its I/O as NIO's `HTTPServerPipelineHandler` keeps
/// its `ConnectionState`, so that each decision can be tested without a channel. Each event the
/// connection sees is one method here, which updates the state and returns the one `Action` the
/// handler must perform; the handler decides nothing itself.
///
/// The connection's `deadline` is state rather than an action: it moves with almost every
/// request, and the handler keeps one scheduled check no later than it (scheduling a timer per
/// move would cost more than the request), then reports `deadlineCheck(now:)` when that fires.
///
/// Requests are answered one at a time, in order (HTTP/1.1 pipelining, RFC 9112 §9.3.2): while
/// an answer is made, the connection holds whatever else arrives (`hold`), and once something is
/// held it reads no more; once the answer is written, `nextHeld()` gives the held input back in
/// order, until a request is being answered again.
///
/// A request refused before it is read whole (too large, refused from its head, bytes that are not
/// HTTP) is answered with `connection: close`; then the connection stops sending, drops what the
/// client still sends for `Timeouts.linger` (so the client reads the answer instead of a reset),
/// and closes.
struct HTTPConnectionState {
    struct Timeouts {
        /// A keep-alive connection closes after this long without a request.
        var idle: TimeAmount
        /// A request must be read whole this long after the connection's accept (its first
        /// request) or its first byte.
        var request: TimeAmount
        /// How long a refused connection drops input before it closes.
        var linger: TimeAmount
        /// What a fresh connection still gets for its first request when the server drains:
        /// that request may already be on its way, and closing at once would reset its client.
        var drainGrace: TimeAmount
    }

    enum Phase {
        /// Between requests, or before the first.
        case awaitingRequest
        /// A head has arrived and the responder is looking at it (`Action.screen`); an admitted
        /// request's body buffer will start with `bodyCapacity` bytes.
        case screening(HTTPRequestHead, bodyCapacity: Int)
        /// Reading an admitted request's body.
        case receiving(PendingRequest)
        /// The request is read; its answer is being made or written.
        case answering
        /// Answering a request that will not be read whole; what is left of it is dropped.
        case refusing
        /// The last answer is written and the output closed; input is dropped until the client
        /// closes or the linger ends.
        case lingering
        /// Closed, or closing: nothing more happens.
        case closed
    }

    /// A request admitted from its head, with as much of its body as has arrived.
    struct PendingRequest {
        var head: HTTPRequestHead
        var body: ByteBuffer
        var screening: RequestScreening
    }

    /// Why the connection will close at its deadline.
    enum DeadlineKind: Equatable {
        /// No request since the last answer.
        case idle
        /// A request (or the first one, from the accept) is not read whole yet.
        case request
        /// A refusal was answered; the client gets a moment to read it.
        case linger
    }

    struct Deadline: Equatable {
        var kind: DeadlineKind
        var at: NIODeadline
    }

    /// An answer given instead of reading a request whole.
    enum Refusal: Equatable {
        /// The body is over the responder's `maxBodyBytes` (`HTTPResponder.bodyTooLarge`).
        case bodyTooLarge(HTTPRequestHead)
        /// The bytes are not HTTP/1.1; the reason is the parser's (`HTTPResponder.malformedRequest`).
        case malformed(reason: String)
    }

    /// What the connection reads, in the order it reads it.
    enum Input {
        case part(HTTPServerRequestPart)
        /// Bytes that are not HTTP/1.1; the reason is the parser's.
        case parserFailed(reason: String)
        /// The client will send nothing more (a TCP half-close).
        case inputClosed
    }

    enum Action {
        case none
        /// Ask the responder about the head (`HTTPResponder.screen`) and report the verdict with
        /// `screened(_:allocator:)`.
        case screen(HTTPRequestHead)
        /// Run the responder for the request and write its answer, which is answer `number` of
        /// the connection: report `answerHeadWritten(number:)` and `answerFinished(number:reusable:now:)`.
        case respond(HTTPRequestHead, body: ByteBuffer, screening: RequestScreening, keepAlive: Bool, number: Int)
        /// Write the refusal's answer with `connection: close` now, then report `refusalWritten(now:)`.
        case refuse(Refusal, version: HTTPVersion)
        /// Write a `100 (Continue)` to tell a half-closed client from one that left (see `inputClosed()`).
        case probeClient(HTTPVersion)
        /// Drop the finished request's task and watch for the first byte of the next request
        /// (`RequestStartWatch`), which starts its request timeout.
        case watchForNextRequest
        /// Drop the finished request's task and stop sending; keep reading (what arrives is
        /// dropped) until the client closes or the linger deadline passes.
        case closeOutput
        case close
    }

    private let timeouts: Timeouts
    private(set) var phase = Phase.awaitingRequest
    /// When the connection closes unless something moves it; none while a request is answered.
    private(set) var deadline: Deadline?
    /// Counts the requests answered on this connection, so that a late report about an answer
    /// cannot clobber a newer one's state.
    private(set) var requestNumber = 0
    /// Whether the connection will read another request after the current one. No longer once
    /// the server drains, the client stops sending, or bytes after a request are not HTTP: the
    /// current answer is the last, and says `connection: close` if it has not begun.
    private(set) var acceptsMoreRequests = true
    /// Whether the current answer's head is written (after which a probe would corrupt it), and
    /// the HTTP version it speaks.
    private(set) var answerHasBegun = false
    private(set) var answerVersion = HTTPVersion.http1_1
    /// Input that arrived while an answer was made, in order.
    private var held: [Input] = []

    init(timeouts: Timeouts) {
        self.timeouts = timeouts
    }

    // MARK: Holding input while answering

    /// Whether input is held rather than taken now: while an answer is made, and while input
    /// held before is still waiting (it comes first).
    var holdsInput: Bool { isAnswering || !held.isEmpty }

    /// Whether any input is held: then the connection reads no more.
    var isHoldingInput: Bool { !held.isEmpty }

    private var isAnswering: Bool {
        if case .answering = phase { true } else { false }
    }

    mutating func hold(_ input: Input) {
        held.append(input)
    }

    /// The next held input to take, if the connection is ready for it: not while a request is
    /// answered, except a half-close, which is taken at once after the last request before it
    /// (so that its answer can say `connection: close`).
    mutating func nextHeld() -> Input? {
        guard let next = held.first else { return nil }
        if isAnswering {
            guard case .inputClosed = next else { return nil }
        }
        return held.removeFirst()
    }

    // MARK: Reading requests

    /// The connection is accepted. Its first request must arrive, whole, within the request
    /// timeout, and begin within the idle timeout, as any request on a connection must.
    mutating func accepted(now: NIODeadline) {
        deadline = Deadline(kind: .request, at: now + min(timeouts.request, timeouts.idle))
    }

    /// The first bytes of a request arrive (`RequestStartWatch`, or its head when the watch did not
    /// see it begin): it must be read whole within the request timeout. Only between requests: a
    /// request timeout already running (the first request's, from the accept) is not extended.
    mutating func requestBytesBegan(now: NIODeadline) {
        guard case .awaitingRequest = phase, deadline?.kind == .idle else { return }
        deadline = Deadline(kind: .request, at: now + timeouts.request)
    }

    /// A request's head.
    mutating func receivedHead(_ head: HTTPRequestHead, maxBodyBytes: Int, now: NIODeadline) -> Action {
        switch phase {
        case .awaitingRequest:
            requestBytesBegan(now: now)
            let length = head.headers.first(name: "content-length").flatMap(Int.init)
            if let length, length > maxBodyBytes {
                // Refused before a byte of the body is read, and before the responder sees it.
                return refuse(.bodyTooLarge(head), version: head.version)
            }
            phase = .screening(head, bodyCapacity: min(max(length ?? 0, 0), maxBodyBytes))
            return .screen(head)
        case .refusing, .lingering, .closed:
            return .none  // input after the last answer
        case .screening, .receiving, .answering:
            return closeConnection()  // the parser never does this, and input is held while answering
        }
    }

    /// The responder's verdict on the head reported by `Action.screen`. A refused request is
    /// answered at once, with an empty body, and its body is never read: no buffer is made for it.
    mutating func screened(_ screening: RequestScreening, allocator: ByteBufferAllocator) -> Action {
        guard case .screening(let head, let bodyCapacity) = phase else { return closeConnection() }
        if screening.isRefused {
            phase = .refusing
            deadline = nil
            return startAnswering(head, body: ByteBuffer(), screening: screening, keepAlive: false)
        }
        phase = .receiving(PendingRequest(head: head, body: allocator.buffer(capacity: bodyCapacity), screening: screening))
        return .none
    }

    mutating func receivedBody(_ chunk: ByteBuffer, maxBodyBytes: Int) -> Action {
        switch phase {
        case .receiving(var request):
            guard request.body.readableBytes + chunk.readableBytes <= maxBodyBytes else {
                return refuse(.bodyTooLarge(request.head), version: request.head.version)
            }
            // Leave the phase before appending, so that the body buffer has one owner and grows
            // in place instead of being copied.
            phase = .answering
            var chunk = chunk
            request.body.writeBuffer(&chunk)
            phase = .receiving(request)
            return .none
        case .refusing, .lingering, .closed:
            return .none  // the rest of a refused request, or input after the last answer
        case .awaitingRequest, .screening, .answering:
            return closeConnection()
        }
    }

    /// The request is read whole: its timeout stops, and it is answered.
    mutating func receivedEnd() -> Action {
        switch phase {
        case .receiving(let request):
            deadline = nil
            phase = .answering
            return startAnswering(request.head, body: request.body, screening: request.screening,
                                  keepAlive: request.head.isKeepAlive && acceptsMoreRequests)
        case .refusing, .lingering, .closed:
            return .none
        case .awaitingRequest, .screening, .answering:
            return closeConnection()
        }
    }

    /// Bytes that are not an HTTP/1.1 request. After a request, they are held while it is
    /// answered, then answered in turn.
    mutating func parserFailed(reason: String) -> Action {
        switch phase {
        case .awaitingRequest, .screening, .receiving:
            // They get the responder's 400 (NIO's own error handler answers with an empty body).
            return refuse(.malformed(reason: reason), version: .http1_1)
        case .answering:
            return closeConnection()  // input is held while answering
        case .refusing, .lingering, .closed:
            return .none
        }
    }

    // MARK: Answering

    /// The head of answer `number` is written.
    mutating func answerHeadWritten(number: Int) {
        if number == requestNumber { answerHasBegun = true }
    }

    /// Answer `number` is written, or failed; `reusable` says whether the connection can carry
    /// another request after it (written whole, and keep-alive).
    mutating func answerFinished(number: Int, reusable: Bool, now: NIODeadline) -> Action {
        if case .closed = phase { return .none }
        if case .refusing = phase, number == requestNumber { return lingerAfterRefusal(now: now) }
        if !reusable { return closeConnection() }
        guard number == requestNumber, case .answering = phase else { return .none }  // a late report
        guard acceptsMoreRequests else { return closeConnection() }
        phase = .awaitingRequest
        deadline = Deadline(kind: .idle, at: now + timeouts.idle)
        return .watchForNextRequest
    }

    /// A refusal's answer (`Action.refuse`) is written, or failed.
    mutating func refusalWritten(now: NIODeadline) -> Action {
        switch phase {
        case .lingering, .closed: return .none
        default: return lingerAfterRefusal(now: now)
        }
    }

    // MARK: Events from outside the request

    /// The server drains. Requests already on their way are served (with `connection: close`);
    /// an idle keep-alive connection closes now, and a fresh one gets a moment for its first request.
    mutating func drain(now: NIODeadline) -> Action {
        acceptsMoreRequests = false
        guard case .awaitingRequest = phase else { return .none }
        if requestNumber > 0 { return closeConnection() }
        deadline = Deadline(kind: .request, at: now + timeouts.drainGrace)
        return .none
    }

    /// The client will send nothing more (a TCP half-close). A request read whole is still
    /// answered; one half-sent never will be whole.
    ///
    /// A client that shut only its sending side waits for the answer; one that closed the whole
    /// connection has left, and its request should stop costing upstream tokens. Both look the
    /// same on the wire until something is sent, so the answer's head not being written yet, the
    /// gateway sends a `100 (Continue)`, which every HTTP/1.1 client must parse and may ignore
    /// (RFC 9110 §15.2): a closed socket answers it with a reset, which closes the connection and
    /// cancels the request. HTTP/1.0 has no 1xx answers.
    mutating func inputClosed() -> Action {
        switch phase {
        case .answering, .refusing:
            acceptsMoreRequests = false
            guard !answerHasBegun, answerVersion.major * 10 + answerVersion.minor >= 11 else { return .none }
            return .probeClient(answerVersion)
        case .awaitingRequest, .screening, .receiving, .lingering:
            return closeConnection()
        case .closed:
            return .none
        }
    }

    /// The scheduled check for `deadline` fires; the deadline may have moved since it was set.
    mutating func deadlineCheck(now: NIODeadline) -> Action {
        guard let deadline, deadline.at <= now else { return .none }
        return closeConnection()
    }

    /// The channel closed (whoever closed it).
    mutating func closed() {
        phase = .closed
        deadline = nil
        held.removeAll()
    }

    // MARK: Transitions

    private mutating func startAnswering(_ head: HTTPRequestHead, body: ByteBuffer, screening: RequestScreening,
                                         keepAlive: Bool) -> Action {
        requestNumber += 1
        answerHasBegun = false
        answerVersion = head.version
        return .respond(head, body: body, screening: screening, keepAlive: keepAlive, number: requestNumber)
    }

    /// Answers a request that will not be read whole. The handler writes the answer at once, so
    /// its head counts as begun: a half-close from now on needs no probe.
    private mutating func refuse(_ refusal: Refusal, version: HTTPVersion) -> Action {
        phase = .refusing
        deadline = nil
        answerHasBegun = true
        return .refuse(refusal, version: version)
    }

    /// Stops sending and drops input until the client closes or the linger ends: closing with
    /// unread input would reset the connection, and the client could lose the answer.
    private mutating func lingerAfterRefusal(now: NIODeadline) -> Action {
        phase = .lingering
        deadline = Deadline(kind: .linger, at: now + timeouts.linger)
        return .closeOutput
    }

    private mutating func closeConnection() -> Action {
        closed()
        return .close
    }
}
