import CCurl
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The Kernel's HTTP client: libcurl's multi interface driven by one dedicated thread.
///
/// Callers never block: they await continuations that the curl thread resumes. Everything that
/// touches a curl handle runs on that thread; other threads talk to it through a command queue
/// and `curl_multi_wakeup`. libcurl brings connection reuse, HTTP/2 over TLS (ALPN), and the
/// proxy environment variables (`https_proxy`, `no_proxy`, …).
public final class UpstreamClient: @unchecked Sendable {
    // `multi` and `active` belong to the curl thread; `commands` and `isRunning` are locked.
    private let multi: UnsafeMutableRawPointer
    private let commands = NIOLockedValueBox<(queue: [Command], isRunning: Bool)>(([], true))
    private var active: [UnsafeMutableRawPointer: UpstreamTransfer] = [:]
    private let stopped = ConditionLock(value: false)
    /// Easy handles kept for the next requests. `curl_easy_reset` keeps a handle's buffers, so a
    /// request does not allocate and free curl's ~22 KB of per-transfer state (its receive buffer,
    /// the handle itself) or set its defaults up again. `nil` once the client has stopped.
    private let idleHandles = NIOLockedValueBox<[UnsafeMutableRawPointer]?>([])
    private static let maxIdleHandles = 64
    let allocator = ByteBufferAllocator()

    enum Command {
        case add(UpstreamTransfer)
        case resume(UpstreamTransfer)
        case cancel(UpstreamTransfer, UpstreamError)
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    public init(maxConnections: Int = 512) {
        _ = Self.globalInit
        multi = curl_multi_init()
        sluice_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, maxConnections)
        sluice_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        Thread.start(named: "sluice-upstream") { [self] in run() }
    }

    /// Sends a request and returns the whole response. Cancelling the task aborts the transfer.
    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
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
    public func stream(_ request: UpstreamRequest) async throws -> UpstreamStreamingResponse {
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

    /// Fails every transfer in flight with `UpstreamError.shutdown` and stops the thread.
    public func shutdown() {
        let wasRunning = commands.withLockedValue { state in
            defer { state.isRunning = false }
            return state.isRunning
        }
        guard wasRunning else { return }
        curl_multi_wakeup(multi)
        stopped.lock(whenValue: true)
        stopped.unlock()
    }

    func cancel(_ transfer: UpstreamTransfer, _ error: UpstreamError) {
        transfer.cancelRequested.withLockedValue { $0 = true }
        enqueue(.cancel(transfer, error))
    }

    func enqueue(_ command: Command) {
        let accepted = commands.withLockedValue { state in
            guard state.isRunning else { return false }
            state.queue.append(command)
            return true
        }
        if accepted {
            curl_multi_wakeup(multi)
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

    // MARK: - The curl thread

    private func run() {
        var running: Int32 = 0
        while true {
            let (queue, isRunning) = commands.withLockedValue { state in
                defer { state.queue.removeAll(keepingCapacity: true) }
                return (state.queue, state.isRunning)
            }
            guard isRunning else { break }
            for command in queue { execute(command) }
            curl_multi_perform(multi, &running)
            collectFinished()
            expireFirstByteDeadlines()
            curl_multi_poll(multi, nil, 0, pollTimeoutMilliseconds(), nil)
        }
        for (_, transfer) in active { finish(transfer, with: .shutdown) }
        for command in commands.withLockedValue({ $0.queue }) {
            if case .add(let transfer) = command { transfer.complete(.shutdown) }
        }
        curl_multi_cleanup(multi)
        let idle = idleHandles.withLockedValue { handles in
            defer { handles = nil }
            return handles ?? []
        }
        for easy in idle { curl_easy_cleanup(easy) }
        stopped.lock()
        stopped.unlock(withValue: true)
    }

    private func execute(_ command: Command) {
        switch command {
        case .add(let transfer):
            if transfer.cancelRequested.withLockedValue({ $0 }) {
                transfer.complete(.cancelled)
                return
            }
            active[transfer.easy] = transfer
            transfer.startedAt = .now()
            curl_multi_add_handle(multi, transfer.easy)
        case .resume(let transfer):
            guard active[transfer.easy] != nil else { return }
            transfer.wantsMore = true
            if transfer.isPaused {
                transfer.isPaused = false
                curl_easy_pause(transfer.easy, sluice_curlpause_cont())
            }
        case .cancel(let transfer, let error):
            guard active[transfer.easy] != nil else { return }
            finish(transfer, with: error)
        }
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
        let now = NIODeadline.now()
        for transfer in active.values where !transfer.headersComplete {
            if let deadline = transfer.firstByteDeadline, deadline < now {
                finish(transfer, with: .timedOut(.firstByte))
            }
        }
    }

    private func pollTimeoutMilliseconds() -> Int32 {
        let waiting = active.values.contains { !$0.headersComplete && $0.firstByteDeadline != nil }
        return waiting ? 50 : 1000
    }

    /// Removes a transfer from the multi handle and reports its outcome.
    private func finish(_ transfer: UpstreamTransfer, with error: UpstreamError?) {
        active[transfer.easy] = nil
        curl_multi_remove_handle(multi, transfer.easy)
        transfer.complete(error)
    }
}
