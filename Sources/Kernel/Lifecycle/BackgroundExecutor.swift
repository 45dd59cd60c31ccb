import Foundation

/// The thread where `BackgroundWork` runs jobs that can hold a thread for milliseconds, as
/// encoding and sending a batch of spans does: `sluice-bgwork`. Sluice makes the event loops
/// Swift's global executor, so work left there stalls every request on its loop while it runs
/// (bench/RESULTS.md has what the tracing exporter cost there). Child tasks (task groups,
/// `async let`) and default actors called from a job follow it here.
///
/// The thread starts with the first job and ends at `stop()`, which `BackgroundWork.run` calls
/// once its last job has ended; a job enqueued after that starts it again rather than being lost.
///
/// Once idle, the thread lets jobs gather for a few milliseconds before it runs them, so that work
/// fed from the request path (a span to export per request, say) costs one wake-up per batch
/// rather than a thread switch per item. Background work may start that much later; it is not
/// for anything a request waits on.
final class BackgroundExecutor: TaskExecutor, @unchecked Sendable {
    /// How long an idle thread, once woken, waits for more jobs.
    static let gathering: TimeInterval = 0.005

    private let name: String
    // All below are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var isIdle = false
    private var hasThread = false
    private var stopRequested = false

    init(name: String) {
        self.name = name
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        let wake = isIdle && jobs.count == 1
        let start = !hasThread
        if start {
            hasThread = true
            stopRequested = false
        }
        condition.unlock()
        if start { Thread.start(named: name) { [self] in run() } }
        if wake { condition.signal() }
    }

    /// Returns once the thread has run every job enqueued so far and ended.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopRequested = true
        condition.broadcast()
        while hasThread { condition.wait() }
    }

    /// Whether the thread is running (for tests).
    var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return hasThread
    }

    private func run() {
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            if jobs.isEmpty {
                if stopRequested {
                    hasThread = false
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                isIdle = true
                while jobs.isEmpty, !stopRequested { condition.wait() }
                isIdle = false
                let stopping = stopRequested
                condition.unlock()
                if !stopping { Thread.sleep(forTimeInterval: Self.gathering) }
                continue
            }
            swap(&batch, &jobs)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
