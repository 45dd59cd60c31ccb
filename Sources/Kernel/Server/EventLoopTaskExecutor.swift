import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Keeps a task on one event loop, whichever thread resumes it.
///
/// A request's task is resumed by whichever thread completes its awaits (curl's, for one). Left
/// to the global executor it would go on on any loop and then hop to its connection's loop to
/// write the answer; preferring the connection's loop keeps the whole request there: one
/// wake-up instead of two, warm caches, and the NIO upstream transport's pool of that loop.
/// Jobs run on no serial executor, as the global executor runs them, so calls between the
/// pipeline's nonisolated async functions go on in place instead of becoming jobs of their own.
final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    private init(_ loop: any EventLoop) {
        self.loop = loop
    }

    /// One per loop, never freed: a task's preferred executor must outlive the task.
    private static let perLoop = NIOLockedValueBox<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

    static func of(_ loop: any EventLoop) -> EventLoopTaskExecutor {
        perLoop.withLockedValue { executors in
            if let executor = executors[ObjectIdentifier(loop)] { return executor }
            let executor = EventLoopTaskExecutor(loop)
            executors[ObjectIdentifier(loop)] = executor
            return executor
        }
    }

    /// The executor of the event loop this code runs on, if it runs on one.
    static var current: EventLoopTaskExecutor? { MultiThreadedEventLoopGroup.currentEventLoop.map(of) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
