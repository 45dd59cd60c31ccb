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
        // while they are checked and has ended when this returns.
        try await BackgroundWork.withRunning { background in
            do throws(ManifestErrors) {
                let manifest = try ManifestReader(registry: registry, environment: environment).read(file: file)
                let generation = try await GatewayGeneration.build(manifest, upstream: upstream, background: background, registry: registry,
                                                                   environment: environment, logger: logger)
                await generation.shutdown()
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
}
