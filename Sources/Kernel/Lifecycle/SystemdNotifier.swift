import CSystemd
import Foundation

/// Tells systemd about the service's state (`Type=notify`). Does nothing when not run by systemd.
public enum SystemdNotifier {
    public static var isEnabled: Bool { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil }

    /// Sends `READY=1`, `STATUS=…`, `STOPPING=1`, … (newline-separated assignments).
    public static func notify(_ state: String) {
        guard isEnabled else { return }
        _ = sd_notify(0, state)
    }

    /// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC=` wants it with `RELOADING=1`.
    public static var monotonicMicroseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
