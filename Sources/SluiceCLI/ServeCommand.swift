import ArgumentParser
import Foundation
import Kernel
import Logging
import ServiceLifecycle

struct ServeCommand<Program: GatewayProgram>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        commandName: "serve",
        abstract: "Load the manifest and serve. SIGHUP reloads it; SIGTERM or SIGINT drains and exits.") }

    @Option(name: .shortAndLong, help: "The manifest to load.")
    var config = "plugins.json"

    @Option(help: "trace, debug, info, notice, warning, error or critical (or $SLUICE_LOG_LEVEL).")
    var logLevel: String?

    @Option(help: ArgumentHelp("KiB of log records that may wait for a slow reader of stdout or the journal; beyond it records are dropped and counted (default 4096, or $SLUICE_LOG_BUFFER_KIB).", valueName: "KiB"))
    var logBufferKib: Int?

    @Option(help: "Write the process id here (for `sluice reload --pid-file`); removed on exit.")
    var pidFile: String?

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel ?? ProcessInfo.processInfo.environment["SLUICE_LOG_LEVEL"] ?? "info") ?? .info
        let toJournal = JournalLogHandler.isJournalStream
        if let kib = logBufferKib ?? ProcessInfo.processInfo.environment["SLUICE_LOG_BUFFER_KIB"].flatMap(Int.init) {
            guard kib > 0 else { throw ValidationError("--log-buffer-kib must be a positive number of KiB") }
            LogWriter.standardOutput.limit = kib << 10
            LogWriter.journal.limit = kib << 10
        }
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = toJournal ? JournalLogHandler(label: label) : JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: Program.commandName)
        if let pidFile {
            try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        }
        defer { if let pidFile { try? FileManager.default.removeItem(atPath: pidFile) } }
        // Logging was set up here, so its threads end here, after the gateway's last words (and
        // a refused manifest's, below); anything logged later is written on the caller's thread.
        defer {
            LogWriter.standardOutput.stop(timeout: .seconds(2))
            LogWriter.journal.stop(timeout: .seconds(2))
        }

        let gateway = Gateway(configFile: config, registry: Program.registry(), logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: gateway)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch let errors as ManifestErrors {
            for error in errors.errors { logger.critical("manifest refused", metadata: ["error": .string(error.description)]) }
            FileHandle.standardError.write(Data((errors.description + "\n").utf8))
            throw ExitCode(2)
        }
    }
}
