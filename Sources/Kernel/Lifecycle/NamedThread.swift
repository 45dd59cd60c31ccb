import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Thread {
    /// Starts a thread that shows as `name` (its first 15 bytes, Linux's limit) in top, ps, perf
    /// and core dumps. Foundation's `name`, set before `start()`, does not name the system thread
    /// on Linux: it kept the name of the thread that started it (often a Dispatch worker's).
    static func start(named name: String, _ body: @escaping @Sendable () -> Void) {
        let systemName = Array(name.utf8.prefix(15))
        let thread = Thread {
            // What pthread_setname_np does, which Swift's Glibc module does not export.
            let comm = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            if comm >= 0 {
                _ = systemName.withUnsafeBytes { write(comm, $0.baseAddress, $0.count) }
                close(comm)
            }
            body()
        }
        thread.start()
    }
}
