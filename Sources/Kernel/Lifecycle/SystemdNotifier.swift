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
}
