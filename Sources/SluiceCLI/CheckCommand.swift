import ArgumentParser
import Foundation
import Kernel
import Logging

struct CheckCommand<Program: GatewayProgram>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        commandName: "check",
        abstract: "Check a manifest: print every error (file, JSON path, what is expected) and exit non-zero if any.") }

    @Argument(help: "The manifest to check.")
    var file = "plugins.json"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let registry = Program.registry()
        let logger = Logger(label: "sluice.check") { _ in SwiftLogNoOpLogHandler() }
        let upstream = UpstreamClient()
        defer { upstream.shutdown() }
        // Plugins built here may start background work (a probe loop, an exporter); it runs
        // while they are checked and has ended when this returns. Plugins that keep state check
        // it at start, so the database is opened (and migrated) as serving would, and closed after.
        try await BackgroundWork.withRunning { background in
            do throws(ManifestErrors) {
                let manifest = try ManifestReader(registry: registry, environment: environment).read(file: file)
                try await Self.buildAndShutDown(manifest, upstream: upstream, background: background, registry: registry,
                                                environment: environment, logger: logger)
                for warning in manifest.warnings { print("warning: \(warning)") }
                print("\(file): ok (\(manifest.providers.count) providers, \(manifest.models.count) models, \(manifest.pipeline.count) pipeline stages)")
            } catch {
                FileHandle.standardError.write(Data((error.description + "\n").utf8))
                let count = error.errors.count
                FileHandle.standardError.write(Data("\(file): \(count) error\(count == 1 ? "" : "s")\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    /// Opens the database in a helper with typed throws: the generation's shutdown (its ledger's
    /// flush) comes before the database closes, and background jobs still running then are the
    /// caller's (`withRunning` ends them after this returns; none of them writes to the database
    /// here, since no request was served).
    static func buildAndShutDown(_ manifest: Manifest, upstream: UpstreamClient, background: BackgroundWork, registry: PluginRegistry,
                                 environment: [String: String], logger: Logger) async throws(ManifestErrors) {
        do {
            try await GatewayStateDatabase.withOpen(manifest, logger: logger) { database in
                let generation = try await GatewayGeneration.build(manifest, upstream: upstream, background: background, registry: registry,
                                                                   environment: environment, logger: logger, database: database)
                await generation.shutdown()
            }
        } catch let errors as ManifestErrors {
            throw errors
        } catch {
            throw ManifestErrors([ManifestError(file: manifest.file, path: "database", "\(error)")])
        }
    }
}
