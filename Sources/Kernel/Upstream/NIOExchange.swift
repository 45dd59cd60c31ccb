import NIOCore
import NIOHTTP1

/// One request on the NIO transport, from the caller's continuation to the answer's last byte.
///
/// Thread discipline: every field is touched on `loop` only. The caller starts it there (it runs
/// on that loop, or hops once), the connection feeds it there, and the two calls that may come
/// from elsewhere — the task's cancellation and the body reader's demand — hop there first.
final class NIOExchange: @unchecked Sendable {
    /// The pool of the loop it runs on, which keeps the exchange's deadlines.
    private let pool: LoopConnectionPool
    var loop: any EventLoop { pool.loop }
    let url: PlainHTTPURL
    let method: HTTPMethod
    /// The request's head (`UpstreamRequestHead`) and body are kept until the answer begins: a
    /// request sent on a kept-alive connection that the provider had just closed is sent again on
    /// a new one. Dropped then: a stream runs for minutes, and a chat body carries the whole
    /// conversation.
    private(set) var requestHead: ByteBuffer
    private(set) var body: ByteBuffer?
    let timeouts: UpstreamTimeouts
    private let maxResponseBytes: Int

    private var stage = Stage.idle
    /// The caller's continuation, from `begin` until the answer (or a failure) is handed over.
    private var waiter: Waiter?
    /// A whole answer's head and its bytes so far, while it is collected. Fields of their own, not
    /// an enum's payload: a chunk is appended in place, where a payload taken out and put back is
    /// copied, the whole answer so far with every chunk, and its head with it.
    private var answerHead: HTTPResponseHead?
    private var collected: ByteBuffer?
    /// A streamed answer's body, fed until its end.
    private var source: UpstreamBody.Source?
    /// When the answer must have begun, and ended; both count from the start, connecting
    /// included, as curl's do. The pool's one timer checks them (`LoopConnectionPool.track`).
    private var firstByteDeadline: NIODeadline?
    private var totalDeadline: NIODeadline?
    /// The connection carrying it, while one does.
    var connection: UpstreamConnection?
    /// Whether the reader wants more chunks of a streamed body.
    private(set) var wantsMore = true
    /// Whether any part of the answer has arrived (after that, it is never sent again).
    private(set) var hasAnswer = false
    /// Whether it went out on a connection an earlier answer had used.
    var isOnKeptConnection = false
    /// Whether it has been sent again on a new connection already.
    var wasResent = false

    enum Waiter {
        case whole(CheckedContinuation<UpstreamResponse, any Error>)
        case streaming(CheckedContinuation<UpstreamStreamingResponse, any Error>)

        func resume(throwing error: UpstreamError) {
            switch self {
            case .whole(let continuation): continuation.resume(throwing: error)
            case .streaming(let continuation): continuation.resume(throwing: error)
            }
        }
    }

    private enum Stage {
        case idle
        /// Failed (cancelled, say) before the caller's continuation was handed over.
        case failedEarly(UpstreamError)
        /// `waiter` waits for the answer's head.
        case waiting
        /// `waiter` waits for a whole answer's end; `answerHead` and `collected` hold it so far.
        case collecting
        /// `source` feeds a streamed answer's body.
        case streaming
        case done
    }

    /// Throws when the request's head cannot be sent (`UpstreamRequestHead`).
    init(_ request: UpstreamRequest, url: PlainHTTPURL, pool: LoopConnectionPool) throws(UpstreamError) {
        requestHead = try UpstreamRequestHead.bytes(method: request.method, target: url.target, host: url.authority,
                                                    headers: request.headers, bodyLength: request.body?.readableBytes)
        self.pool = pool
        self.url = url
        method = request.method
        body = request.body
        timeouts = request.timeouts
        maxResponseBytes = request.maxResponseBytes
    }

    /// Whether the answer has been handed over (or the exchange failed).
    var isDone: Bool {
        switch stage {
        case .done, .failedEarly: true
        default: false
        }
    }

    /// Hands over the caller's continuation and starts the deadlines. False when the exchange has
    /// already failed (it was cancelled first); the continuation is then resumed.
    func begin(_ waiter: Waiter) -> Bool {
        loop.preconditionInEventLoop()
        if case .failedEarly(let error) = stage {
            stage = .done
            waiter.resume(throwing: error)
            return false
        }
        self.waiter = waiter
        stage = .waiting
        if timeouts.firstByte != nil || timeouts.total != nil {
            let now = loop.now
            firstByteDeadline = timeouts.firstByte.map { now + TimeAmount($0) }
            totalDeadline = timeouts.total.map { now + TimeAmount($0) }
            pool.track(self)
        }
        return true
    }

    /// The deadline the exchange waits for next; none once it has ended.
    var nextDeadline: NIODeadline? {
        guard let firstByteDeadline, !hasAnswer else { return totalDeadline }
        guard let totalDeadline else { return firstByteDeadline }
        return min(firstByteDeadline, totalDeadline)
    }

    /// Fails the exchange if one of its deadlines has passed.
    func checkDeadlines(now: NIODeadline) {
        if !hasAnswer, let firstByteDeadline, firstByteDeadline <= now {
            fail(.timedOut(.firstByte))
        } else if let totalDeadline, totalDeadline <= now {
            fail(.timedOut(.total))
        }
    }

    // MARK: the connection's events

    func received(_ head: HTTPResponseHead) {
        hasAnswer = true
        requestHead = ByteBuffer()
        body = nil
        guard case .waiting = stage, let waiter else { return }
        switch waiter {
        case .whole:
            stage = .collecting
            answerHead = head
        case .streaming(let continuation):
            self.waiter = nil
            let (responseBody, source) = UpstreamBody.make(for: self)
            stage = .streaming
            self.source = source
            continuation.resume(returning: UpstreamStreamingResponse(status: Int(head.status.code), headers: head.headers, body: responseBody))
        }
    }

    func received(_ chunk: ByteBuffer) {
        switch stage {
        case .collecting:
            guard (collected?.readableBytes ?? 0) + chunk.readableBytes <= maxResponseBytes else {
                return fail(.responseTooLarge(limit: maxResponseBytes))
            }
            if collected == nil {
                collected = chunk  // most answers arrive in one read: keep it, no copy
            } else {
                var chunk = chunk
                collected!.writeBuffer(&chunk)
            }
        case .streaming:
            switch source?.yield(chunk) {
            case .produceMore?, nil: break
            case .stopProducing?: wantsMore = false
            case .dropped?: fail(.cancelled)
            }
        default:
            break
        }
    }

    /// The answer is complete.
    func ended() {
        endDeadlines()
        connection = nil
        switch stage {
        case .collecting:
            stage = .done
            let body = collected.take() ?? ByteBuffer()
            guard case .whole(let continuation)? = waiter.take(), let head = answerHead.take() else { return }
            continuation.resume(returning: UpstreamResponse(status: Int(head.status.code), headers: head.headers, body: body))
        case .streaming:
            stage = .done
            source.take()?.finish()
        default:
            break
        }
    }

    /// Ends the exchange with `error`, once; the connection carrying it is closed (its state
    /// mid-answer is unknown, so it is never reused).
    func fail(_ error: UpstreamError) {
        endDeadlines()
        body = nil
        switch stage {
        case .idle:
            stage = .failedEarly(error)
        case .failedEarly, .done:
            return
        case .waiting, .collecting:
            stage = .done
            (answerHead, collected) = (nil, nil)
            waiter.take()?.resume(throwing: error)
        case .streaming:
            stage = .done
            source.take()?.finish(error)
        }
        if let connection {
            self.connection = nil
            connection.abandon(self)
        }
    }

    /// Called from any thread: the caller's task was cancelled.
    func cancel() {
        onLoop { $0.fail(.cancelled) }
    }

    private func endDeadlines() {
        guard firstByteDeadline != nil || totalDeadline != nil else { return }
        firstByteDeadline = nil
        totalDeadline = nil
        pool.untrack(self)
    }

    private func onLoop(_ work: @escaping @Sendable (NIOExchange) -> Void) {
        if loop.inEventLoop { work(self) } else { loop.execute { work(self) } }
    }
}

extension NIOExchange: UpstreamBodyFeeder {
    func readerWantsMore() {
        onLoop { exchange in
            exchange.wantsMore = true
            exchange.connection?.resumeReading()
        }
    }

    func readerWentAway() {
        onLoop { $0.fail(.cancelled) }
    }
}
