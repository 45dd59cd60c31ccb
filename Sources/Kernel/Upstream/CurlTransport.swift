import CCurl
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The upstream transport for `https://` (and for whatever a provider sends through curl by
/// choice): libcurl's multi interface driven by one dedicated thread (docs/ARCHITECTURE.md,
/// "Upstream transports").
///
/// Callers never block: they await continuations that the curl thread resumes. Everything that
/// touches a curl handle runs on that thread; other threads talk to it through a command queue
/// and an eventfd. libcurl brings connection reuse, HTTP/2 over TLS (ALPN), and the proxy
/// environment variables (`https_proxy`, `no_proxy`, …).
///
/// The thread starts with the first transfer and ends at `shutdown()`, which the `Gateway` calls
/// in its shutdown sequence (docs/ARCHITECTURE.md, "Threads and tasks"); a transport never used
/// has no thread.
///
/// The thread uses curl's socket interface: it waits in `epoll_wait` on the sockets curl names
/// and hands curl only those that are ready. `curl_multi_perform` visits every transfer on each
/// wake-up (a `poll` per transfer), so with thousands of open streams most of the thread's time
/// went to streams that had nothing to read.
final class CurlTransport: @unchecked Sendable {
    // `multi`, `active`, `awaitingFirstByte` and `timerDeadline` belong to the curl thread;
    // `commands` is locked.
    private let multi: UnsafeMutableRawPointer
    private let commands = NIOLockedValueBox(Commands())
    private var active: [UnsafeMutableRawPointer: UpstreamTransfer] = [:]
    /// The transfers with a first-byte deadline whose headers have not all come yet.
    private var awaitingFirstByte: [UnsafeMutableRawPointer: UpstreamTransfer] = [:]
    /// Holds transfers to an HTTP/2 provider back while one of its connections is being set up.
    private var gate = ConnectionGate()
    /// Transfers the gate let go during a curl call, started once it returns (curl's callbacks
    /// may not add handles).
    private var released: [UpstreamTransfer] = []
    /// When curl wants `curl_multi_socket_action(CURL_SOCKET_TIMEOUT)`; nil when it wants nothing.
    private var timerDeadline: NIODeadline?
    private let epoll: Int32
    /// Written by other threads to wake the curl thread; the epoll set watches it.
    private let wakeUp: Int32
    private let stopped = ConditionLock(value: false)
    /// Easy handles kept for the next requests. `curl_easy_reset` keeps a handle's buffers, so a
    /// request does not allocate and free curl's per-transfer state (its receive buffer,
    /// the handle itself) or set its defaults up again. `nil` once the client has stopped.
    private let idleHandles = NIOLockedValueBox<[UnsafeMutableRawPointer]?>([])
    private static let maxIdleHandles = 64
    /// The most HTTP/2 streams curl opens on one connection (the provider may allow fewer).
    static let maxStreamsPerConnection = 1000
    let allocator = ByteBufferAllocator()

    private struct Commands {
        var queue: [Command] = []
        var isRunning = true
        var hasThread = false
    }

    enum Command {
        case add(UpstreamTransfer)
        case resume(UpstreamTransfer)
        case cancel(UpstreamTransfer, UpstreamError)
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    init(maxConnections: Int = 512) {
        _ = Self.globalInit
        multi = curl_multi_init()
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeUp = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        precondition(epoll >= 0 && wakeUp >= 0, "cannot create the upstream client's epoll set: errno \(errno)")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeUp
        epoll_ctl(epoll, EPOLL_CTL_ADD, wakeUp, &event)
        sluice_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, maxConnections)
        sluice_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        // curl's own cap is 100 streams per HTTP/2 connection; the provider's SETTINGS cap still
        // applies. Without this, 1,000 streams to one provider would need at least 10 connections.
        sluice_curl_multi_setopt_long(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, Self.maxStreamsPerConnection)
        sluice_curl_multi_set_callbacks(multi, upstreamSocketCallback, upstreamTimerCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Sends a request and returns the whole response. Cancelling the task aborts the transfer.
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let transfer = try UpstreamTransfer(request, client: self, streaming: false)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.mode = .whole(continuation)
                enqueue(.add(transfer))
            }
        } onCancel: {
            self.cancel(transfer, .cancelled)
        }
    }

    /// Sends a request and returns once the response headers are in; the body follows as read.
    func stream(_ request: UpstreamRequest) async throws -> UpstreamStreamingResponse {
        let transfer = try UpstreamTransfer(request, client: self, streaming: true)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.mode = .streaming(continuation)
                enqueue(.add(transfer))
            }
        } onCancel: {
            self.cancel(transfer, .cancelled)
        }
    }

    /// Fails every transfer in flight with `UpstreamError.shutdown`, stops the thread and returns
    /// once it has ended. Transfers sent after it fail with `.shutdown` at once.
    func shutdown() {
        let (wasRunning, hasThread) = commands.withLockedValue { state in
            defer { state.isRunning = false }
            return (state.isRunning, state.hasThread)
        }
        guard wasRunning else { return }
        guard hasThread else { return releaseCurl() }
        wake()
        stopped.lock(whenValue: true)
        stopped.unlock()
    }

    /// Whether the curl thread is running (for tests).
    var hasThread: Bool {
        commands.withLockedValue { $0.isRunning && $0.hasThread }
    }

    func cancel(_ transfer: UpstreamTransfer, _ error: UpstreamError) {
        transfer.cancelRequested.withLockedValue { $0 = true }
        enqueue(.cancel(transfer, error))
    }

    func enqueue(_ command: Command) {
        let (accepted, startsThread) = commands.withLockedValue { state in
            guard state.isRunning else { return (false, false) }
            state.queue.append(command)
            defer { state.hasThread = true }
            return (true, !state.hasThread)
        }
        if startsThread { Thread.start(named: "sluice-upstream") { [self] in run() } }
        if accepted {
            wake()
        } else if case .add(let transfer) = command {
            transfer.complete(.shutdown)
        }
    }

    /// A handle with curl's defaults: a kept one, or a new one.
    func makeHandle() -> UnsafeMutableRawPointer? {
        idleHandles.withLockedValue { $0?.popLast() } ?? curl_easy_init()
    }

    /// Takes back a handle that is in no multi handle any more.
    func recycle(_ easy: UnsafeMutableRawPointer) {
        curl_easy_reset(easy)
        let kept = idleHandles.withLockedValue { handles in
            guard let count = handles?.count, count < Self.maxIdleHandles else { return false }
            handles?.append(easy)
            return true
        }
        if !kept { curl_easy_cleanup(easy) }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeUp, &one, MemoryLayout<UInt64>.size)
    }

    // MARK: - The curl thread

    private func run() {
        var running: Int32 = 0
        let events = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: 256)
        defer { events.deallocate() }
        while true {
            let (queue, isRunning) = commands.withLockedValue { state in
                defer { state.queue.removeAll(keepingCapacity: true) }
                return (state.queue, state.isRunning)
            }
            guard isRunning else { break }
            for command in queue { execute(command) }
            // An added or resumed transfer has set curl's timer to 0, so this does not wait.
            let ready = epoll_wait(epoll, events.baseAddress, Int32(events.count), waitMilliseconds())
            for event in events.prefix(max(0, Int(ready))) {
                let socket = event.data.fd
                if socket == wakeUp {
                    var count: UInt64 = 0
                    _ = read(wakeUp, &count, MemoryLayout<UInt64>.size)
                    continue
                }
                var flags: Int32 = 0
                if event.events & EPOLLIN.rawValue != 0 { flags |= CURL_CSELECT_IN }
                if event.events & EPOLLOUT.rawValue != 0 { flags |= CURL_CSELECT_OUT }
                if event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { flags |= CURL_CSELECT_ERR }
                curl_multi_socket_action(multi, socket, flags, &running)
            }
            if let deadline = timerDeadline, deadline <= .now() {
                timerDeadline = nil
                curl_multi_socket_action(multi, sluice_curl_socket_timeout(), 0, &running)
            }
            collectFinished()
            expireFirstByteDeadlines()
            if gate.isHolding { released += gate.overdue(now: .now()) }
            startReleased()
        }
        for (_, transfer) in active { finish(transfer, with: .shutdown) }
        for transfer in released { transfer.complete(.shutdown) }
        for transfer in gate.releaseAll() { transfer.complete(.shutdown) }
        for command in commands.withLockedValue({ $0.queue }) {
            if case .add(let transfer) = command { transfer.complete(.shutdown) }
        }
        releaseCurl()
        stopped.lock()
        stopped.unlock(withValue: true)
    }

    /// Frees curl's state and the descriptors: on the curl thread as it ends, or in `shutdown`
    /// when there never was one.
    private func releaseCurl() {
        curl_multi_cleanup(multi)
        let idle = idleHandles.withLockedValue { handles in
            defer { handles = nil }
            return handles ?? []
        }
        for easy in idle { curl_easy_cleanup(easy) }
        close(epoll)
        close(wakeUp)
    }

    private func execute(_ command: Command) {
        switch command {
        case .add(let transfer):
            if transfer.cancelRequested.withLockedValue({ $0 }) {
                transfer.complete(.cancelled)
                return
            }
            if gate.admit(transfer) { start(transfer) }
        case .resume(let transfer):
            guard active[transfer.easy] != nil else { return }
            transfer.wantsMore = true
            if transfer.isPaused {
                transfer.isPaused = false
                curl_easy_pause(transfer.easy, sluice_curlpause_cont())
            }
        case .cancel(let transfer, let error):
            if active[transfer.easy] != nil {
                finish(transfer, with: error)
            } else if gate.remove(transfer) {
                transfer.complete(error)
            }
        }
    }

    private func start(_ transfer: UpstreamTransfer) {
        active[transfer.easy] = transfer
        transfer.startedAt = .now()
        if transfer.firstByteDeadline != nil { awaitingFirstByte[transfer.easy] = transfer }
        curl_multi_add_handle(multi, transfer.easy)  // curl asks for a timeout of 0 to start it
    }

    private func startReleased() {
        while !released.isEmpty {
            let batch = released
            released = []
            for transfer in batch {
                if transfer.cancelRequested.withLockedValue({ $0 }) {
                    released += gate.ended(transfer)
                    transfer.complete(.cancelled)
                } else {
                    start(transfer)
                }
            }
        }
    }

    /// curl's pre-request callback: `transfer` has its connection (a new or a reused one).
    func connected(_ transfer: UpstreamTransfer) {
        if let next = gate.connected(transfer) { released.append(next) }
    }

    /// An answer from `origin` shows whether it speaks HTTP/2.
    func learned(_ origin: String, multiplexes: Bool) {
        released += gate.learned(origin, multiplexes: multiplexes)
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                  let transfer = active[easy] else { continue }
            let code = message.pointee.data.result
            finish(transfer, with: code == CURLE_OK ? nil : transfer.error(for: code))
        }
    }

    private func expireFirstByteDeadlines() {
        guard !awaitingFirstByte.isEmpty else { return }
        let now = NIODeadline.now()
        for transfer in Array(awaitingFirstByte.values) {
            if transfer.headersComplete {
                awaitingFirstByte[transfer.easy] = nil
            } else if let deadline = transfer.firstByteDeadline, deadline < now {
                finish(transfer, with: .timedOut(.firstByte))
            }
        }
    }

    /// Until curl's timer is due; every 50 ms while a first-byte deadline is pending.
    private func waitMilliseconds() -> Int32 {
        var wait: Int64 = awaitingFirstByte.isEmpty && !gate.isHolding ? 1000 : 50
        if !released.isEmpty { wait = 0 }
        if let deadline = timerDeadline {
            let left = (deadline - .now()).nanoseconds
            wait = min(wait, max(0, (left + 999_999) / 1_000_000))
        }
        return Int32(wait)
    }

    /// curl's socket callback: watch `socket` for what curl now waits for, or stop watching it.
    fileprivate func watch(_ socket: Int32, for what: Int32) {
        guard what != CURL_POLL_REMOVE else {
            epoll_ctl(epoll, EPOLL_CTL_DEL, socket, nil)
            return
        }
        var event = epoll_event()
        if what & CURL_POLL_IN != 0 { event.events |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { event.events |= EPOLLOUT.rawValue }
        event.data.fd = socket
        if epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event) != 0 {
            epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event)
        }
    }

    /// curl's timer callback: -1 cancels the timer, 0 asks to act at once.
    fileprivate func setTimer(milliseconds: Int) {
        timerDeadline = milliseconds < 0 ? nil : .now() + .milliseconds(Int64(milliseconds))
    }

    /// Removes a transfer from the multi handle and reports its outcome.
    private func finish(_ transfer: UpstreamTransfer, with error: UpstreamError?) {
        active[transfer.easy] = nil
        awaitingFirstByte[transfer.easy] = nil
        curl_multi_remove_handle(multi, transfer.easy)
        released += gate.ended(transfer)
        transfer.complete(error)
    }
}

private let upstreamSocketCallback: sluice_curl_socket_callback = { _, socket, what, userdata, _ in
    Unmanaged<CurlTransport>.fromOpaque(userdata!).takeUnretainedValue().watch(socket, for: what)
    return 0
}

private let upstreamTimerCallback: sluice_curl_timer_callback = { _, milliseconds, userdata in
    Unmanaged<CurlTransport>.fromOpaque(userdata!).takeUnretainedValue().setTimer(milliseconds: milliseconds)
    return 0
}
