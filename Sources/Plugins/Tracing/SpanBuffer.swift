import NIOConcurrencyHelpers

/// Ended spans waiting for the exporter: a bounded array behind one lock. Recording a span is
/// one append under that lock, on the thread that ended the span; no task, actor or stream per
/// span (swift-otel's several task wakeups per span were most of the tracing cost in issue #26).
///
/// When the buffer is full (the collector is slow or down and requests keep coming) a span is
/// dropped and counted rather than held: memory stays bounded and requests never wait.
final class SpanBuffer: Sendable {
    /// What the exporter takes at once: the spans, and how many were dropped since the last take.
    struct Batch: Sendable {
        var spans: [SpanRecord]
        var dropped: Int
    }

    /// OpenTelemetry's batch span processor defaults (`OTEL_BSP_MAX_QUEUE_SIZE` and
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`), which the plugin kept through swift-otel.
    static let defaultCapacity = 2048
    static let defaultBatchSize = 512

    private struct State {
        var spans: [SpanRecord] = []
        var dropped = 0
        var closed = false
        /// The exporter, waiting for a full batch (`waitForBatch`).
        var waiter: CheckedContinuation<Void, Never>?
    }

    /// The most spans held; more are dropped.
    let capacity: Int
    /// How many spans wake the exporter before its interval is up, so that a busy gateway sends
    /// batches of about this size instead of filling the buffer and dropping.
    let batchSize: Int
    private let state = NIOLockedValueBox(State())

    init(capacity: Int = SpanBuffer.defaultCapacity, batchSize: Int = SpanBuffer.defaultBatchSize) {
        precondition(capacity > 0 && batchSize > 0)
        self.capacity = capacity
        self.batchSize = min(batchSize, capacity)
    }

    /// Keeps `span` for the next export, or counts it as dropped when the buffer is full.
    func record(_ span: SpanRecord) {
        let wake = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard state.spans.count < capacity else {
                state.dropped += 1
                return nil
            }
            state.spans.append(span)
            guard state.spans.count >= batchSize, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        wake?.resume()  // outside the lock: the exporter's task is scheduled, not run, here
    }

    /// Takes every span held and the count of those dropped, leaving the buffer empty.
    func take() -> Batch {
        // The next array is made outside the lock, sized as the last batch was.
        var fresh: [SpanRecord] = []
        fresh.reserveCapacity(min(state.withLockedValue { $0.spans.count }, batchSize))
        return state.withLockedValue { state in
            swap(&fresh, &state.spans)
            defer { state.dropped = 0 }
            return Batch(spans: fresh, dropped: state.dropped)
        }
    }

    /// The number of spans held now.
    var count: Int { state.withLockedValue { $0.spans.count } }

    /// Returns once a batch is ready (`batchSize` spans), after `interval`, once `close` has
    /// been called or when the task is cancelled, whichever comes first.
    func waitForBatch(orFor interval: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: interval) }
            group.addTask { await self.untilBatchReady() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Ends the exporter's wait for good: its loop then flushes and returns.
    func close() {
        let waiter = state.withLockedValue { state in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    var isClosed: Bool { state.withLockedValue { $0.closed } }

    private func untilBatchReady() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // A cancellation before the waiter is stored is seen here: the flag is set before
                // the handler runs, and the handler takes the same lock.
                let now = state.withLockedValue { state in
                    if state.closed || state.spans.count >= batchSize || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
