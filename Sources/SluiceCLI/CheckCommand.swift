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
        do {
            let manifest = try ManifestReader(registry: registry, environment: environment).read(file: file)
            try await Self.buildAndShutDown(manifest, upstream: upstream, registry: registry, environment: environment, logger: logger)
            for warning in manifest.warnings { print("warning: \(warning)") }
            print("\(file): ok (\(manifest.providers.count) providers, \(manifest.models.count) models, \(manifest.pipeline.count) pipeline stages)")
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            let count = error.errors.count
            FileHandle.standardError.write(Data("\(file): \(count) error\(count == 1 ? "" : "s")\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Plugins that keep state check it at start, so the database is opened (and migrated) as serving would.
    static func buildAndShutDown(_ manifest: Manifest, upstream: UpstreamClient, registry: PluginRegistry, environment: [String: String],
                                 logger: Logger) async throws(ManifestErrors) {
        let database = GatewayStateDatabase()
        try await database.open(for: manifest, logger: logger)
        do {
            let generation = try await GatewayGeneration.build(manifest, upstream: upstream, registry: registry,
                                                               environment: environment, logger: logger, database: database.current)
            await generation.shutdown()
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }
}
