import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process spoken to in lines over its stdin and stdout (MCP's stdio transport). Its
/// stdout is read by a thread of its own and its stdin written on a serial queue, so a slow or
/// stuck child never holds an event loop. Its stderr is the gateway's.
final class StdioProcess: @unchecked Sendable {
    // `process` is set once in `init`; the file descriptors are only used on `writes` after that.
    private let process = Process()
    private let input: Int32
    private let writes = DispatchQueue(label: "sluice-mcp-stdin")
    /// Only touched on `writes`: once stdin is closed its descriptor may name another file.
    private var isClosed = false
    var pid: Int32 { process.processIdentifier }

    /// Starts `command`; `onLine` gets each line of its stdout, `onExit` its status once it ended.
    init(command: [String], environment: [String: String], directory: String?,
         onLine: @escaping @Sendable (ArraySlice<UInt8>) -> Void, onExit: @escaping @Sendable (Int32) -> Void) throws {
        // A write to a child that has exited must fail with EPIPE, not kill the gateway.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: Self.resolve(command[0], path: environment["PATH"]))
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.terminationHandler = { onExit($0.terminationStatus) }
        try process.run()
        input = dup(stdin.fileHandleForWriting.fileDescriptor)
        try? stdin.fileHandleForWriting.close()
        try? stdin.fileHandleForReading.close()
        let output = dup(stdout.fileHandleForReading.fileDescriptor)
        try? stdout.fileHandleForReading.close()
        try? stdout.fileHandleForWriting.close()
        Thread.start(named: "sluice-mcp-out") { Self.readLines(output, onLine) }
    }

    /// A bare program name is looked up in `path`, as a shell would.
    static func resolve(_ program: String, path: String?) -> String {
        guard !program.contains("/") else { return program }
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return program
    }

    private static func readLines(_ fd: Int32, _ onLine: (ArraySlice<UInt8>) -> Void) {
        defer { close(fd) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            pending.append(contentsOf: chunk[..<count])
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if newline > start { onLine(pending[start..<newline]) }
                start = newline + 1
            }
            pending.removeFirst(start)
            // A line longer than any sane message: the child is not speaking MCP; drop it.
            if pending.count > 64 << 20 { pending.removeAll() }
        }
    }

    /// Writes one line (a newline is added).
    func send(_ bytes: [UInt8]) {
        writes.async { [self] in
            guard !isClosed else { return }
            var line = bytes
            line.append(UInt8(ascii: "\n"))
            var offset = 0
            while offset < line.count {
                let written = line[offset...].withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    /// Closes stdin (the transport's way to say "stop"), then SIGTERM after `grace`, then SIGKILL.
    func stop(grace: Duration) async {
        await withCheckedContinuation { continuation in
            writes.async { [self] in
                if !isClosed { close(input) }
                isClosed = true
                continuation.resume()
            }
        }
        for signal in [SIGTERM, SIGKILL] {
            let deadline = ContinuousClock.now + grace
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            guard process.isRunning else { return }
            kill(process.processIdentifier, signal)
        }
    }
}
