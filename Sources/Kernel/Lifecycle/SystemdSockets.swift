import CSystemd
import Foundation

/// Listening sockets passed by systemd socket activation (`LISTEN_FDS`, `LISTEN_FDNAMES`).
enum SystemdSockets {
    struct Passed {
        var descriptor: CInt
        var name: String
    }

    /// The passed sockets, or none when not socket-activated. Unsets the variables, so that
    /// child processes do not take the sockets for theirs.
    static func passed() -> [Passed] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = Int(sd_listen_fds_with_names(1, &names))
        guard count > 0 else { return [] }
        defer {
            for index in 0..<count { free(names?[index]) }
            free(names)
        }
        return (0..<count).map { index in
            Passed(descriptor: SD_LISTEN_FDS_START + CInt(index), name: names?[index].map { String(cString: $0) } ?? "unknown")
        }
    }
}
