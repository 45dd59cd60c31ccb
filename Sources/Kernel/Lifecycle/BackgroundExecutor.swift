import Foundation

/// Where plugins run background work that can hold a thread for milliseconds, as encoding and
/// sending a batch of spans does: a thread of its own, `sluice-bgwork`. Sluice makes the event
/// loops Swift's global executor, so work left there stalls every request on its loop while it
/// runs (bench/RESULTS.md has what the tracing exporter cost there).
///
///     Task(executorPreference: BackgroundExecutor.shared) { … }
///
/// Child tasks (task groups, `async let`) and default actors called from them follow the preference.
///
/// Once idle, the thread lets jobs gather for a few milliseconds before it runs them, so that work
/// fed from the request path (a span to export per request, say) costs one wake-up per batch
/// rather than a thread switch per item. Background work may start that much later; it is not
/// for anything a request waits on.
public final class BackgroundExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = BackgroundExecutor(name: "sluice-bgwork")

    /// How long an idle thread, once woken, waits for more jobs.
    static let gathering: TimeInterval = 0.005

    // `jobs` and `isIdle` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var isIdle = false

    init(name: String) {
        Thread.start(named: name) { [self] in run() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        let wake = isIdle && jobs.count == 1
        condition.unlock()
        if wake { condition.signal() }
    }

    private func run() {
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            if jobs.isEmpty {
                isIdle = true
                while jobs.isEmpty { condition.wait() }
                isIdle = false
                condition.unlock()
                Thread.sleep(forTimeInterval: Self.gathering)
                condition.lock()
            }
            swap(&batch, &jobs)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
