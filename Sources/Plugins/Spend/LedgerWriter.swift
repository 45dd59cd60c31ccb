import Kernel
import Logging
import NIOConcurrencyHelpers

/// Collects ledger rows from finished requests and writes them in batches, off the request path:
/// a request only appends to a buffer under a lock. A flush runs every `interval`, or sooner
/// once a batch is full. While the database fails, rows wait, up to `capacity`; beyond that the
/// oldest are dropped, counted and logged. `close()` (the drain) writes whatever is left.
final class LedgerWriter: Sendable {
    private struct State {
        var pending: [SpendLedger.Record] = []
        var dropped = 0
        var droppedLogged = 0
        /// Rows at the front of `pending` being written now.
        var inFlight = 0
        var closed = false
    }

    let ledger: SpendLedger
    let batchSize: Int
    let capacity: Int
    let interval: Duration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// Where the flush loop runs: a job of the gateway's background work, not a task of its own.
    private let background: BackgroundWork
    private let loop = NIOLockedValueBox<BackgroundJob?>(nil)

    /// Told of each batch the database refused.
    private let onWriteFailed: @Sendable () -> Void

    init(ledger: SpendLedger, batchSize: Int, capacity: Int, interval: Duration, background: BackgroundWork, logger: Logger,
         onWriteFailed: @escaping @Sendable () -> Void = {}) {
        self.ledger = ledger
        self.onWriteFailed = onWriteFailed
        self.background = background
        self.batchSize = batchSize
        self.capacity = capacity
        self.interval = interval
        self.logger = logger
    }

    /// Rows dropped because the buffer was full.
    var dropped: Int { state.withLockedValue { $0.dropped } }
    var pendingCount: Int { state.withLockedValue { $0.pending.count } }

    func append(_ record: SpendLedger.Record) {
        state.withLockedValue { state in
            guard state.pending.count >= capacity else { return state.pending.append(record) }
            state.dropped += 1
            // The oldest row not being written right now makes room; if all are, the new one is dropped.
            if state.pending.count > state.inFlight {
                state.pending.remove(at: state.inFlight)
                state.pending.append(record)
            }
        }
    }

    func start() {
        let job = background.start { [self] in
            while true {
                await sleepOrWake()
                let closed = state.withLockedValue { $0.closed }
                await flush()
                if closed || Task.isCancelled { return }
            }
        }
        loop.withLockedValue { $0 = job }
    }

    /// Stops the loop and writes what is left, retrying a failing database a few times.
    func close() async {
        state.withLockedValue { $0.closed = true }
        // The loop sees `closed` within a tick and ends after its last flush; then this one
        // retries what the database refused.
        await loop.withLockedValue { $0 }?.waitUntilEnded()
        for attempt in 0..<5 where pendingCount > 0 {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(200 * attempt)) }
            await flush()
        }
        let lost = pendingCount
        if lost > 0 {
            logger.error("spend ledger: rows not written at shutdown (the database did not take them)", metadata: ["rows": .stringConvertible(lost)])
        }
    }

    /// Sleeps until the interval is over, a batch is full or the writer closes: checked in short
    /// ticks, which costs nothing measurable and needs no hand-off between the request path and here.
    private func sleepOrWake() async {
        let deadline = ContinuousClock.now + interval
        while ContinuousClock.now < deadline, !Task.isCancelled {
            if state.withLockedValue({ $0.closed || $0.pending.count >= batchSize }) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Writes pending rows batch by batch until none are left or the database fails.
    func flush() async {
        while true {
            let batch = state.withLockedValue { state -> [SpendLedger.Record] in
                guard state.inFlight == 0, !state.pending.isEmpty else { return [] }
                let batch = Array(state.pending.prefix(batchSize))
                state.inFlight = batch.count
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                try await ledger.append(batch)
                let (dropped, newlyDropped) = state.withLockedValue { state -> (Int, Int) in
                    state.pending.removeFirst(state.inFlight)
                    state.inFlight = 0
                    defer { state.droppedLogged = state.dropped }
                    return (state.dropped, state.dropped - state.droppedLogged)
                }
                if newlyDropped > 0 {
                    logger.error("spend ledger: buffer was full while the database failed; rows dropped",
                                 metadata: ["dropped": .stringConvertible(newlyDropped), "dropped_total": .stringConvertible(dropped)])
                }
            } catch {
                onWriteFailed()
                let (pending, dropped) = state.withLockedValue { state -> (Int, Int) in
                    state.inFlight = 0
                    defer { state.droppedLogged = state.dropped }
                    return (state.pending.count, state.dropped)
                }
                logger.warning("spend ledger: cannot write to the database; rows kept for the next try",
                               metadata: ["error": .string("\(error)"), "pending": .stringConvertible(pending),
                                          "dropped_total": .stringConvertible(dropped)])
                return
            }
        }
    }
}
