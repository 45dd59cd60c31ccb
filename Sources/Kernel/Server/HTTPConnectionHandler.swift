import Logging
import NIOCore
import NIOHTTP1

/// Reads one request at a time from a connection (NIO's pipelining handler queues the next),
/// enforces the body limit and timeouts, runs the responder in a task, and writes the answer
/// with back-pressure. A connection that closes cancels the task, and with it the upstream call.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        case responding
        /// A refused request whose remaining body is ignored until the connection closes.
        case discarding
    }

    private let responder: any HTTPResponder
    private let tracker: RequestTracker
    private let idleTimeout: TimeAmount
    private let requestTimeout: TimeAmount
    private var state = State.idle
    /// The idle or request timeout: the connection closes at `deadline` (none while responding).
    /// One scheduled check serves many deadlines: moving a deadline later, as every request
    /// does, costs nothing; the check that finds it moved schedules itself again.
    private var deadline: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerFiresAt = NIODeadline.distantFuture
    private var task: Task<Void, Never>?
    private var closeWhenIdle = false
    /// Counts requests on this connection, so a late `responseFinished` cannot clobber a newer one.
    private var requestNumber = 0
    /// The connection's loop, where its tasks run.
    private var loopExecutor: EventLoopTaskExecutor?

    init(responder: any HTTPResponder, tracker: RequestTracker, idleTimeout: TimeAmount, requestTimeout: TimeAmount) {
        self.responder = responder
        self.tracker = tracker
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        loopExecutor = EventLoopTaskExecutor.of(context.eventLoop)
        armTimer(context: context, idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        task?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle), (.head(let head), .responding):
            // NIO's pipelining handler passes the next head on as soon as the previous `.end` is
            // written, which can be before `responseFinished` ran: that is a new request too.
            let limit = responder.maxBodyBytes
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                refuseOversized(head, context: context)
                return
            }
            let expected = head.headers.first(name: "content-length").flatMap(Int.init) ?? 0
            state = .receiving(head, context.channel.allocator.buffer(capacity: min(expected, limit)))
            armTimer(context: context, requestTimeout)
        case (.body(var chunk), .receiving(let head, var body)):
            guard body.readableBytes + chunk.readableBytes <= responder.maxBodyBytes else {
                refuseOversized(head, context: context)
                return
            }
            state = .responding  // release the buffer's reference before appending (no copy-on-write)
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            deadline = nil
            state = .responding
            startResponding(head, body: body, context: context)
        case (_, .discarding):
            break
        default:
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is DrainEvent {
            // Requests already on their way are served (with `connection: close`); an idle
            // keep-alive connection closes now, and a fresh one gets a moment for its first request.
            closeWhenIdle = true
            if case .idle = state {
                if requestNumber > 0 { context.close(promise: nil) } else { armTimer(context: context, .seconds(1)) }
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else { return context.close(promise: nil) }
        switch state {
        case .idle, .receiving:
            refuseMalformed(parserError, context: context)
            context.close(promise: nil)
        case .responding:
            // Bytes after a request were not HTTP. NIO's pipelining handler passes the error on
            // once the answer before them is written; that answer finishes, then the connection closes.
            closeWhenIdle = true
        case .discarding:
            context.close(promise: nil)
        }
    }

    /// Bytes that are not an HTTP/1.1 request get the responder's 400 (NIO's own error handler
    /// answered with an empty body), written before the connection closes.
    private func refuseMalformed(_ error: HTTPParserError, context: ChannelHandlerContext) {
        state = .discarding
        deadline = nil
        let response = responder.malformedRequest(String(describing: error))
        guard case .whole(let body) = response.body else { return }
        _ = ResponseWriter(channel: context.channel, keepAlive: false, version: .http1_1).writeWhole(response, body: body)
    }

    private func armTimer(context: ChannelHandlerContext, _ delay: TimeAmount) {
        let deadline = NIODeadline.now() + delay
        self.deadline = deadline
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

    private func refuseOversized(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        deadline = nil
        state = .discarding
        var response = responder.bodyTooLarge(head)
        response.headers.replaceOrAdd(name: "connection", value: "close")
        guard case .whole(let body) = response.body else { return }
        _ = ResponseWriter(channel: context.channel, keepAlive: false, version: head.version).writeWhole(response, body: body)
    }

    private func startResponding(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let responder = responder
        let writer = ResponseWriter(channel: context.channel, keepAlive: head.isKeepAlive && !closeWhenIdle, version: head.version)
        let ticket = tracker.begin()
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        requestNumber += 1
        let number = requestNumber
        let loop = context.eventLoop
        let executor = loopExecutor
        task = Task(executorPreference: executor) {
            let response = await responder.respond(to: head, body: body)
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
        if !reusable { context.close(promise: nil) }
        guard number == requestNumber, case .responding = state else { return }  // the next request has begun
        task = nil
        state = .idle
        if closeWhenIdle {
            context.close(promise: nil)
        } else {
            armTimer(context: context, idleTimeout)
        }
    }
}

/// Sent to every open connection when the server starts draining.
struct DrainEvent: Sendable {}
