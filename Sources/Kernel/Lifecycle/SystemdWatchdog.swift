import CSystemd
import NIOCore

/// Sends `WATCHDOG=1` at half the interval systemd asked for (`WatchdogSec=`), each time only
/// after every event loop has run a no-op: a wedged loop withholds the ping, so systemd restarts
/// the process. Each ping also refreshes `STATUS=`.
struct SystemdWatchdog {
    let group: any EventLoopGroup

    func run(status: @escaping @Sendable () -> String) async {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return }
        let interval = Duration.microseconds(Int64(microseconds / 2))
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            for loop in group.makeIterator() { try? await loop.submit {}.get() }
            guard !Task.isCancelled else { return }
            SystemdNotifier.notify("WATCHDOG=1\nSTATUS=\(status())")
        }
    }
}
