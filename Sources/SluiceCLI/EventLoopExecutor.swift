import CConcurrencyHook
import NIOCore
import NIOPosix

/// Makes the server's event loops Swift concurrency's global executor, as NIO's
/// `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`
/// does, but through the linker rather than dlsym, so it also works in a binary that links the
/// Swift runtime in. A job enqueued from an event loop stays on it (`any()` is sticky).
/// Unlike NIO's, jobs run on no serial executor, as the default global executor runs them: run on
/// the loop's own serial executor, every call into a nonisolated async function hops back to the
/// global executor as a job of its own (29 jobs per proxied request, against 2 now).
enum EventLoopExecutor {
    private typealias Original = @convention(thin) (UnownedJob) -> Void
    private typealias Hook = @convention(thin) (UnownedJob, Original) -> Void

    /// Call once, from the main thread, before any task is created.
    static func install() {
        let slot = sluice_concurrency_enqueue_global_hook()
        guard slot.pointee == nil else { return }  // someone else's executor: keep it
        withUnsafeTemporaryAllocation(of: Hook.self, capacity: 1) { hook in
            hook.baseAddress!.initialize(to: { job, _ in
                MultiThreadedEventLoopGroup.singleton.any().execute {
                    sluice_run_job_on_global_executor(unsafeBitCast(job, to: UnsafeMutableRawPointer.self))
                }
            })
            hook.baseAddress!.withMemoryRebound(to: UnsafeMutableRawPointer.self, capacity: 1) { slot.pointee = $0.pointee }
        }
    }
}
