import ArgumentParser
import Foundation
import Kernel

/// Asks a running gateway to reload its manifest (SIGHUP), after checking the manifest here so
/// that the admin sees its errors at once.
struct ReloadCommand<Program: GatewayProgram>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        commandName: "reload",
        abstract: "Check the manifest, then send SIGHUP to a running gateway so that it reloads it.") }

    @Option(help: "The gateway's process id.")
    var pid: Int32?

    @Option(help: "A file holding the process id (`sluice serve --pid-file`).")
    var pidFile: String?

    @Option(name: .shortAndLong, help: "The manifest to check first (the gateway reloads its own --config).")
    var config: String?

    func run() async throws {
        guard let target = try processID() else {
            throw ValidationError("give --pid or --pid-file (under systemd: systemctl reload sluice)")
        }
        if let config {
            do {
                _ = try ManifestReader(registry: Program.registry(), environment: ProcessInfo.processInfo.environment).read(file: config)
            } catch {
                FileHandle.standardError.write(Data((error.description + "\n\(config): not reloaded\n").utf8))
                throw ExitCode(1)
            }
        }
        guard kill(target, SIGHUP) == 0 else {
            FileHandle.standardError.write(Data("cannot signal process \(target): \(String(cString: strerror(errno)))\n".utf8))
            throw ExitCode(1)
        }
        print("sent SIGHUP to \(target); the gateway logs the outcome")
    }

    private func processID() throws -> Int32? {
        if let pid { return pid }
        guard let pidFile else { return nil }
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ValidationError("\(pidFile) holds no process id")
        }
        return pid
    }
}
