import Logging
import NIOCore
import NIOHTTP1

/// Reads one request at a time from a connection (NIO's pipelining handler queues the next),
/// screens its head before reading its body, enforces the body limit and timeouts, runs the
/// responder in a task, and writes the answer with back-pressure. A connection that closes
/// cancels the task, and with it the upstream call.
///
/// A request refused before it was read whole (413, a refusal from its head, bytes that are not
/// HTTP) is answered with `connection: close`; then the connection stops sending, drops what the
/// client still sends for a moment (so the client reads the answer instead of a reset), and closes.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum DeadlineKind { case idle, request, linger }

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer, RequestScreening)
        case responding
        /// Answering a request whose body is not read; the rest of it is dropped.
        case refusing
        /// The last answer is written and the output closed; input is dropped until the client
        /// closes or `lingerTimeout` passes.
        case closing
    }

    /// How long a refused connection drops input before it closes.
    static let lingerTimeout = TimeAmount.seconds(2)

    private let responder: any HTTPResponder
    private let tracker: RequestTracker
    private let idleTimeout: TimeAmount
    private let requestTimeout: TimeAmount
    private var state = State.idle
    /// The connection closes at `deadline`: the idle timeout between requests, the request
    /// timeout from the accept (or a request's first byte) until the request is read, the linger
    /// after a refusal; none while responding. One scheduled check serves many deadlines: moving
    /// a deadline later, as every request does, costs nothing; the check that finds it moved
    /// schedules itself again.
    private var deadline: NIODeadline?
    private var deadlineKind = DeadlineKind.request
    private var timer: Scheduled<Void>?
    private var timerFiresAt = NIODeadline.distantFuture
    private var task: Task<Void, Never>?
    private var closeWhenIdle = false
    /// Counts requests on this connection, so a late `responseFinished` cannot clobber a newer one.
    private var requestNumber = 0
    /// The connection's loop, where its tasks run.
    private var loopExecutor: EventLoopTaskExecutor?
    /// Whether the current answer's head has been written, and the request's HTTP version.
    private var answerBegun = false
    private var respondingVersion = HTTPVersion.http1_1
    /// Tells this handler when the bytes of a new request begin to arrive (see `RequestStartWatch`).
    let watch = RequestStartWatch()

    init(responder: any HTTPResponder, tracker: RequestTracker, idleTimeout: TimeAmount, requestTimeout: TimeAmount) {
        self.responder = responder
        self.tracker = tracker
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        loopExecutor = EventLoopTaskExecutor.of(context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        watch.onRequestStart = { handler.value.requestStarted(context: loopContext.value) }
        // The first request must arrive, whole, within the request timeout of the accept (and
        // begin within the idle timeout, as any request on a connection must).
        armTimer(context: context, min(requestTimeout, idleTimeout), .request)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        watch.onRequestStart = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        task?.cancel()
        watch.onRequestStart = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle), (.head(let head), .responding):
            // NIO's pipelining handler passes the next head on as soon as the previous `.end` is
            // written, which can be before `responseFinished` ran: that is a new request too.
            requestStarted(context: context)
            let limit = responder.maxBodyBytes
            let length = head.headers.first(name: "content-length").flatMap(Int.init)
            if let length, length > limit {
                refuse(responder.bodyTooLarge(head), version: head.version, context: context)
                return
            }
            let screening = responder.screen(head)
            if screening.isRefused {
                state = .refusing
                deadline = nil
                startResponding(head, body: ByteBuffer(), screening: screening, keepAlive: false, context: context)
                return
            }
            state = .receiving(head, context.channel.allocator.buffer(capacity: min(max(length ?? 0, 0), limit)), screening)
        case (.body(var chunk), .receiving(let head, var body, let screening)):
            guard body.readableBytes + chunk.readableBytes <= responder.maxBodyBytes else {
                refuse(responder.bodyTooLarge(head), version: head.version, context: context)
                return
            }
            state = .responding  // release the buffer's reference before appending (no copy-on-write)
            body.writeBuffer(&chunk)
            state = .receiving(head, body, screening)
        case (.end, .receiving(let head, let body, let screening)):
            deadline = nil
            state = .responding
            startResponding(head, body: body, screening: screening, keepAlive: head.isKeepAlive && !closeWhenIdle, context: context)
        case (.body, .refusing), (.end, .refusing), (_, .closing):
            break  // the rest of a refused request, or input after the last answer
        default:
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is DrainEvent:
            // Requests already on their way are served (with `connection: close`); an idle
            // keep-alive connection closes now, and a fresh one gets a moment for its first request.
            closeWhenIdle = true
            if case .idle = state {
                if requestNumber > 0 { context.close(promise: nil) } else { armTimer(context: context, .seconds(1), .request) }
            }
        case ChannelEvent.inputClosed:
            // The client will send nothing more. A request read whole is still answered; one
            // half-sent never will be whole.
            switch state {
            case .responding, .refusing:
                closeWhenIdle = true
                probeClient(context: context)
            case .idle, .receiving, .closing:
                context.close(promise: nil)
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.close(promise: nil) }
        switch state {
        case .idle, .receiving:
            // Bytes that are not an HTTP/1.1 request get the responder's 400 (NIO's own error
            // handler answers with an empty body).
            refuse(responder.malformedRequest(String(describing: parserError)), version: .http1_1, context: context)
        case .responding, .refusing:
            // Bytes after a request were not HTTP. NIO's pipelining handler passes the error on
            // once the answer before them is written; that answer finishes, then the connection closes.
            closeWhenIdle = true
        case .closing:
            break
        }
    }

    /// A client that shut only its sending side waits for the answer; one that closed the whole
    /// connection has left, and its request should stop costing upstream tokens. Both look the
    /// same on the wire until something is sent, so the gateway sends a `100 (Continue)`, which
    /// every HTTP/1.1 client must parse and may ignore (RFC 9110 §15.2): a closed socket answers
    /// it with a reset, which closes the connection and cancels the request.
    private func probeClient(context: ChannelHandlerContext) {
        guard !answerBegun, respondingVersion.major * 10 + respondingVersion.minor >= 11 else { return }
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: respondingVersion, status: .continue))), promise: nil)
    }

    /// The bytes of a request begin: it must be read whole within the request timeout (which
    /// already runs for a connection's first request, from its accept).
    private func requestStarted(context: ChannelHandlerContext) {
        guard deadline == nil || deadlineKind == .idle else { return }
        armTimer(context: context, requestTimeout, .request)
    }

    private func armTimer(context: ChannelHandlerContext, _ delay: TimeAmount, _ kind: DeadlineKind) {
        let deadline = NIODeadline.now() + delay
        self.deadline = deadline
        deadlineKind = kind
        if timer == nil || deadline < timerFiresAt { scheduleCheck(context: context, at: deadline) }
    }

    private func scheduleCheck(context: ChannelHandlerContext, at time: NIODeadline) {
        timer?.cancel()
        timerFiresAt = time
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: time) {
            handler.value.checkDeadline(context: loopContext.value)
        }
    }

    private func checkDeadline(context: ChannelHandlerContext) {
        timer = nil
        guard let deadline else { return }
        if deadline <= .now() {
            context.close(promise: nil)
        } else {
            scheduleCheck(context: context, at: deadline)
        }
    }

    /// Answers a request that will not be read whole, then closes the connection gracefully.
    private func refuse(_ response: GatewayResponse, version: HTTPVersion, context: ChannelHandlerContext) {
        state = .refusing
        deadline = nil
        guard case .whole(let body) = response.body else { return context.close(promise: nil) }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        ResponseWriter(channel: context.channel, keepAlive: false, version: version).writeWhole(response, body: body).whenComplete { _ in
            handler.value.closeGracefully(context: loopContext.value)
        }
    }

    /// Stops sending and drops input until the client closes or the linger ends: closing with
    /// unread input would reset the connection, and the client could lose the answer.
    private func closeGracefully(context: ChannelHandlerContext) {
        if case .closing = state { return }
        state = .closing
        task = nil
        armTimer(context: context, Self.lingerTimeout, .linger)
        let promise = context.eventLoop.makePromise(of: Void.self)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        promise.futureResult.whenFailure { _ in loopContext.value.close(promise: nil) }
        context.close(mode: .output, promise: promise)
    }

    private func startResponding(_ head: HTTPRequestHead, body: ByteBuffer, screening: RequestScreening, keepAlive: Bool,
                                 context: ChannelHandlerContext) {
        let responder = responder
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        requestNumber += 1
        let number = requestNumber
        answerBegun = false
        respondingVersion = head.version
        let writer = ResponseWriter(channel: context.channel, keepAlive: keepAlive, version: head.version) {
            if handler.value.requestNumber == number { handler.value.answerBegun = true }
        }
        let ticket = tracker.begin()
        let loop = context.eventLoop
        let executor = loopExecutor
        task = Task(executorPreference: executor) {
            let response = await responder.respond(to: head, body: body, screening: screening)
            let finished: @Sendable (Result<Bool, any Error>) -> Void = { result in
                ticket.end()
                let reusable = (try? result.get()) == true && writer.keepAlive
                handler.value.responseFinished(number, context: loopContext.value, reusable: reusable)
            }
            let events: EventStream
            switch response.body {
            case .whole(let body): return writer.writeWhole(response, body: body).whenComplete(finished)
            case .events(let stream): events = stream
            }
            // A stream can run for minutes, and Swift keeps the stack slabs that a task's deepest
            // call grew (the pipeline's async frames, some 20 KB) until the task ends. So this task
            // sends the head and ends now, and a fresh one, which holds only the events, writes them.
            writer.writeStreamHead(response)
            let streaming = Task(executorPreference: executor) { await writer.writeEvents(events).whenComplete(finished) }
            loop.execute { handler.value.handOver(to: streaming, number, ticket: ticket) }
        }
        tracker.attach(task!, to: ticket)
    }

    /// The stream's own task replaces the request's. Run on the loop, as `channelInactive` is: a
    /// client that left (or a drain that cancelled the request) before this cancels the stream.
    private func handOver(to streaming: Task<Void, Never>, _ number: Int, ticket: RequestTracker.Ticket) {
        tracker.attach(streaming, to: ticket)
        guard number == requestNumber else { return }
        if task?.isCancelled == true { streaming.cancel() }
        task = streaming
    }

    private func responseFinished(_ number: Int, context: ChannelHandlerContext, reusable: Bool) {
        if case .refusing = state, number == requestNumber { return closeGracefully(context: context) }
        if !reusable { context.close(promise: nil) }
        guard number == requestNumber, case .responding = state else { return }  // the next request has begun
        task = nil
        state = .idle
        if closeWhenIdle {
            context.close(promise: nil)
        } else {
            armTimer(context: context, idleTimeout, .idle)
            watch.isWaiting = true
        }
    }
}

/// Sits before the HTTP decoder and tells the connection handler when the first bytes of a
/// request arrive after an idle spell, so that the request timeout runs from a request's first
/// byte rather than from its complete head (a client trickling a head byte by byte is bounded
/// by it too). It looks at nothing but whether it is waiting.
final class RequestStartWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    var isWaiting = false
    var onRequestStart: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isWaiting {
            isWaiting = false
            onRequestStart?()
        }
        context.fireChannelRead(data)
    }
}

/// Sent to every open connection when the server starts draining.
struct DrainEvent: Sendable {}
