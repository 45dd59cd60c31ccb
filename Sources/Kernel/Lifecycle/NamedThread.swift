import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Thread {
    /// Starts a thread that shows as `name` in top, ps, perf and core dumps.
    static func start(named name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            setSystemName(name)
            body()
        }
        thread.start()
    }

    /// Names the calling thread for the system (its first 15 bytes, Linux's limit). Foundation's
    /// `name`, set before `start()`, does not do it on Linux: a thread kept the name of the one
    /// that started it (often a Dispatch worker's). This is what pthread_setname_np does, which
    /// Swift's Glibc module does not export.
    static func setSystemName(_ name: String) {
        let comm = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard comm >= 0 else { return }
        _ = Array(name.utf8.prefix(15)).withUnsafeBytes { write(comm, $0.baseAddress, $0.count) }
        close(comm)
    }
}
