import NIOConcurrencyHelpers

/// Work that outlives the request or call that starts it: a rate-limit settle, a cache save, a
/// retired generation's shutdown, a generation's health probes, the trace exporter. Every job
/// runs as a child task of `run()`, which the `Gateway` runs for as long as it runs, so when
/// `run` returns no job is left and the `sluice-bgwork` thread has stopped
/// (docs/ARCHITECTURE.md, "Threads and tasks").
///
/// Plugins reach it as `context.background`:
///
///     context.background.submit { try? await store.adjust(…) }          // once, fire and forget
///     let loop = context.background.start { await pollUntilCancelled() } // until `loop.stop()`
///
/// Jobs submitted before `run` starts wait for it; after `finish`, none is accepted.
public final class BackgroundWork: Sendable {
    struct Job: Sendable {
        let offEventLoops: Bool
        let body: @Sendable () async -> Void
    }

    /// How long jobs still running when `finish` is called may take before they are cancelled.
    public static let defaultGrace: Duration = .seconds(5)

    private let jobs: AsyncStream<Job>
    private let submissions: AsyncStream<Job>.Continuation
    private let grace = NIOLockedValueBox(BackgroundWork.defaultGrace)
    private let running = RunningJobs()
    /// The `sluice-bgwork` thread, for jobs that compute for milliseconds (`offEventLoops`).
    let executor = BackgroundExecutor(name: "sluice-bgwork")

    public init() {
        (jobs, submissions) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// Runs `body` once, as a child task of `run()`. Returns false (and `body` never runs) once
    /// `finish` has been called: a job must not be needed for correctness after shutdown.
    ///
    /// - Parameter offEventLoops: on the `sluice-bgwork` thread rather than the global executor
    ///   (which Sluice makes its event loops): for work that computes for milliseconds, such as
    ///   encoding a batch for export. Its child tasks follow the job there. Such jobs gather for
    ///   5 ms before the thread wakes, so feeding them from the request path costs no thread switch
    ///   per request; they are not for anything a request waits on.
    @discardableResult
    public func submit(offEventLoops: Bool = false, _ body: @escaping @Sendable () async -> Void) -> Bool {
        if case .terminated = submissions.yield(Job(offEventLoops: offEventLoops, body: body)) { return false }
        return true
    }

    /// Runs `body`, which is meant to run until cancelled (a polling loop, an exporter), as a
    /// child task of `run()`. The returned job stops it; so does the end of `run`.
    public func start(offEventLoops: Bool = false, _ body: @escaping @Sendable () async -> Void) -> BackgroundJob {
        let job = BackgroundJob()
        if !submit(offEventLoops: offEventLoops, { await job.run(body) }) { job.abandon() }
        return job
    }

    /// Stops accepting jobs. `run` returns once those accepted have ended; the ones still running
    /// after `grace` are cancelled (and then awaited: a job is a child task, it cannot be left behind).
    public func finish(grace: Duration = BackgroundWork.defaultGrace) {
        self.grace.withLockedValue { $0 = grace }
        submissions.finish()
    }

    /// Runs every job submitted, until `finish` has been called and the last job has ended, or
    /// until cancelled (which cancels the jobs running and drops those not yet begun). Then stops
    /// the `sluice-bgwork` thread.
    public func run() async {
        try? await withThrowingDiscardingTaskGroup { group in
            for await job in jobs {
                running.add()
                group.addTask(executorPreference: job.offEventLoops ? executor : nil) { [running] in
                    await job.body()
                    running.remove()
                }
            }
            // No more jobs: those left get the grace, then the timer's error cancels the group.
            if running.count > 0 {
                let grace = grace.withLockedValue { $0 }
                group.addTask {
                    try await Task.sleep(for: grace)
                    throw GraceExpired()
                }
                await running.untilNone()
                group.cancelAll()
            }
        }
        executor.stop()
    }

    /// Runs `body` with background work that runs while it does, then finishes that work and
    /// returns once its last job has ended: for a program or a test that builds generations
    /// without a `Gateway` (`sluice check`).
    public static func withRunning<T>(_ body: (BackgroundWork) async throws -> T) async throws -> T {
        let work = BackgroundWork()
        let result = await withDiscardingTaskGroup(returning: Result<T, any Error>.self) { group in
            group.addTask { await work.run() }
            let result: Result<T, any Error>
            do {
                result = .success(try await body(work))
            } catch {
                result = .failure(error)
            }
            work.finish()
            return result
        }
        return try result.get()
    }

    /// How many jobs are running (for tests and status).
    public var runningJobs: Int { running.count }

    private struct GraceExpired: Error {}
}

/// The count of running jobs, and whoever waits for it to reach zero.
private final class RunningJobs: Sendable {
    private let state = NIOLockedValueBox<(count: Int, waiter: CheckedContinuation<Void, Never>?)>((0, nil))

    var count: Int { state.withLockedValue { $0.count } }

    func add() { state.withLockedValue { $0.count += 1 } }

    func remove() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.count -= 1
            guard state.count == 0 else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once no job runs. One waiter at a time (the runner).
    func untilNone() async {
        await withCheckedContinuation { continuation in
            let now = state.withLockedValue { state in
                if state.count == 0 { return true }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}
