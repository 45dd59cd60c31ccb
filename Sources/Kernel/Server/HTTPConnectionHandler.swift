import NIOCore
import NIOHTTP1

/// Reads one request at a time from a connection, screens its head before reading its body,
/// enforces the body limit and timeouts, runs the responder in a task, and writes the answer, as
/// bytes (`ResponseWriter`), with back-pressure. A connection that closes cancels the task, and
/// with it the upstream call.
///
/// It follows NIO's HTTP decoder directly: it also does what NIO's pipelining handler would.
/// While an answer is made, what else the client sent is held (`HTTPConnectionState.hold`) and
/// the connection then reads no more; once the answer is written the held input is taken up in order.
///
/// It only does the I/O: what to do on each event is decided by its `HTTPConnectionState`,
/// which documents the rules (refusals, timeouts, drain, half-close, pipelining). Time is the loop's
/// (`eventLoop.now`): the system clock on NIO's loops, the test's on an `EmbeddedEventLoop`.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long a refused connection drops input before it closes.
    static let lingerTimeout = TimeAmount.seconds(2)
    /// What a fresh connection still gets for its first request when the server drains.
    static let drainGrace = TimeAmount.seconds(1)

    private let responder: any HTTPResponder
    private let tracker: RequestTracker
    private var state: HTTPConnectionState
    /// Runs no later than `state.deadline`, which moves later with every request.
    private var deadlineCheck: DeadlineCheck?
    /// The current request's task (or its stream's), cancelled if the connection closes.
    private var task: Task<Void, Never>?
    /// The connection's loop, where its tasks run.
    private var loopExecutor: EventLoopTaskExecutor?
    /// Tells this handler when the bytes of a new request begin to arrive.
    let watch = RequestStartWatch()
    /// A read the channel asked for while the connection was not reading.
    private var readPending = false

    init(responder: any HTTPResponder, tracker: RequestTracker, idleTimeout: TimeAmount, requestTimeout: TimeAmount) {
        self.responder = responder
        self.tracker = tracker
        state = HTTPConnectionState(timeouts: .init(idle: idleTimeout, request: requestTimeout,
                                                    linger: Self.lingerTimeout, drainGrace: Self.drainGrace))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        loopExecutor = EventLoopTaskExecutor.of(context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        watch.onRequestStart = { handler.value.requestStarted(context: loopContext.value) }
        // Held strongly (a weak reference would put the handler's and the context's reference
        // counts, touched many times a request, on their slow path); `handlerRemoved` lets go.
        deadlineCheck = DeadlineCheck(loop: context.eventLoop) { [self] now in
            perform(state.deadlineCheck(now: now), context: context)
            return state.deadline?.at
        }
        state.accepted(now: context.eventLoop.now)
        scheduleDeadlineCheck()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadlineCheck?.cancel()
        deadlineCheck = nil
        watch.onRequestStart = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.closed()
        deadlineCheck?.cancel()
        task?.cancel()
        watch.onRequestStart = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if state.holdsInput { return state.hold(.part(part)) }
        take(.part(part), context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is DrainEvent: perform(state.drain(now: context.eventLoop.now), context: context)
        case ChannelEvent.inputClosed:
            if state.isHoldingInput { return state.hold(.inputClosed) }
            take(.inputClosed, context: context)
        default: context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Anything but a parser error means the connection itself failed.
        guard let parserError = error as? HTTPParserError else { return context.close(promise: nil) }
        let event = HTTPConnectionState.Input.parserFailed(reason: String(describing: parserError))
        if state.holdsInput { return state.hold(event) }
        take(event, context: context)
    }

    /// The channel asks for more input: not once input is held (what arrives would only be held
    /// too, without bound); the read is made once the held input is taken. While an answer is made
    /// and nothing is held the connection keeps reading: a client that sends its next request only
    /// after this answer sends nothing meanwhile, and stopping and starting the socket's reads on
    /// every request would cost two system calls each. What a pipelining client sends meanwhile is
    /// held, at most what one read brings (`maxMessagesPerRead` buffers), and then reads stop.
    func read(context: ChannelHandlerContext) {
        if state.isHoldingInput {
            readPending = true
        } else {
            context.read()
        }
    }

    private func take(_ input: HTTPConnectionState.Input, context: ChannelHandlerContext) {
        let action: HTTPConnectionState.Action
        switch input {
        case .part(.head(let head)): action = state.receivedHead(head, maxBodyBytes: responder.maxBodyBytes, now: context.eventLoop.now)
        case .part(.body(let chunk)): action = state.receivedBody(chunk, maxBodyBytes: responder.maxBodyBytes)
        case .part(.end): action = state.receivedEnd()
        case .parserFailed(let reason): action = state.parserFailed(reason: reason)
        case .inputClosed: action = state.inputClosed()
        }
        perform(action, context: context)
    }

    /// Takes up the input held while the last answer was made, then reads again.
    private func takeHeldInput(context: ChannelHandlerContext) {
        while let input = state.nextHeld() { take(input, context: context) }
        if readPending && !state.isHoldingInput {
            readPending = false
            context.read()
        }
    }

    private func requestStarted(context: ChannelHandlerContext) {
        state.requestBytesBegan(now: context.eventLoop.now)
        scheduleDeadlineCheck()
    }

    private func perform(_ action: HTTPConnectionState.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .screen(let head):
            perform(state.screened(responder.screen(head), allocator: context.channel.allocator), context: context)
        case .respond(let head, let body, let screening, let keepAlive, let number):
            watch.isWaiting = false
            startResponding(head, body: body, screening: screening, keepAlive: keepAlive, number: number, context: context)
        case .refuse(let refusal, let version):
            writeRefusal(refusal, version: version, context: context)
        case .probeClient(let version):
            context.writeAndFlush(wrapOutboundOut(ResponseHead.continue(version: version, allocator: context.channel.allocator)),
                                  promise: nil)
        case .watchForNextRequest:
            task = nil
            watch.isWaiting = true
            takeHeldInput(context: context)
        case .closeOutput:
            task = nil
            let promise = context.eventLoop.makePromise(of: Void.self)
            let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            // A channel that cannot shut its output alone is closed whole.
            promise.futureResult.whenFailure { _ in loopContext.value.close(promise: nil) }
            context.close(mode: .output, promise: promise)
        case .close:
            context.close(promise: nil)
        }
        scheduleDeadlineCheck()
    }

    private func scheduleDeadlineCheck() {
        if let deadline = state.deadline?.at { deadlineCheck?.ensure(by: deadline) }
    }

    /// Writes the answer to a request that will not be read whole.
    private func writeRefusal(_ refusal: HTTPConnectionState.Refusal, version: HTTPVersion, context: ChannelHandlerContext) {
        let response: GatewayResponse, method: HTTPMethod
        switch refusal {
        case .bodyTooLarge(let head): (response, method) = (responder.bodyTooLarge(head), head.method)
        case .malformed(let reason): (response, method) = (responder.malformedRequest(reason), .GET)
        }
        guard case .whole(let body) = response.body else { return context.close(promise: nil) }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        ResponseWriter(channel: context.channel, keepAlive: false, version: version, method: method).writeWhole(response, body: body).whenComplete { _ in
            let handler = handler.value, context = loopContext.value
            handler.perform(handler.state.refusalWritten(now: context.eventLoop.now), context: context)
        }
    }

    private func startResponding(_ head: HTTPRequestHead, body: ByteBuffer, screening: RequestScreening, keepAlive: Bool,
                                 number: Int, context: ChannelHandlerContext) {
        let responder = responder
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let writer = ResponseWriter(channel: context.channel, keepAlive: keepAlive, version: head.version, method: head.method) {
            handler.value.state.answerHeadWritten(number: number)
        }
        let ticket = tracker.begin()
        let delivery = Delivery(writer: writer, handler: handler, loopContext: loopContext, ticket: ticket, number: number,
                                loop: context.eventLoop, executor: loopExecutor)
        task = Task(executorPreference: loopExecutor) {
            delivery.deliver(await responder.respond(to: head, body: body, screening: screening))
        }
        tracker.attach(task!, to: ticket)
    }

    /// What becomes of a request's answer. Its work is synchronous and not inlined into the
    /// request's task, whose async frame lives as long as the request waits for its provider
    /// (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    private struct Delivery: Sendable {
        let writer: ResponseWriter
        let handler: NIOLoopBound<HTTPConnectionHandler>
        let loopContext: NIOLoopBound<ChannelHandlerContext>
        let ticket: RequestTracker.Ticket
        let number: Int
        let loop: any EventLoop
        let executor: EventLoopTaskExecutor?

        @inline(never)
        func deliver(_ response: GatewayResponse) {
            let writer = writer, handler = handler, loopContext = loopContext, ticket = ticket, number = number
            let finished: @Sendable (_ written: Bool) -> Void = { written in
                ticket.end()
                let reusable = written && writer.keepAlive
                let handler = handler.value, context = loopContext.value
                handler.perform(handler.state.answerFinished(number: number, reusable: reusable, now: context.eventLoop.now),
                                context: context)
            }
            let events: EventStream
            switch response.body {
            case .whole(let body): return writer.writeWhole(response, body: body).whenComplete { finished((try? $0.get()) != nil) }
            case .events(let stream): events = stream
            }
            // A stream can run for minutes, and Swift keeps the stack slabs that a task's deepest
            // call grew (the pipeline's async frames) until the task ends. So this task
            // sends the head and ends now, and a fresh one, which holds only the events, writes them.
            // It holds the stream's iterator, not the stream: what the stages were made from goes now.
            let framing = writer.writeStreamHead(response)
            nonisolated(unsafe) let iterator = events.makeAsyncIterator()
            let streaming = Task(executorPreference: executor) { await writer.writeEvents(iterator, framing: framing).whenSuccess(finished) }
            loop.execute { handler.value.handOver(to: streaming, number, ticket: ticket) }
        }
    }

    /// The stream's own task replaces the request's. Run on the loop, as `channelInactive` is: a
    /// client that left (or a drain that cancelled the request) before this cancels the stream.
    private func handOver(to streaming: Task<Void, Never>, _ number: Int, ticket: RequestTracker.Ticket) {
        tracker.attach(streaming, to: ticket)
        guard number == state.requestNumber else { return }
        if task?.isCancelled == true { streaming.cancel() }
        task = streaming
    }
}

/// Sent to every open connection when the server starts draining.
struct DrainEvent: Sendable {}
