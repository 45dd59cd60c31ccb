import Logging
import NIOCore
import NIOHTTP1
import Atomics

/// One loaded manifest: its plugins built and started, its pipeline folded. Requests take the
/// current generation when they arrive; a reload builds a new one and retires the old one
/// after its last request.
public final class GatewayGeneration: Sendable {
    public let manifest: Manifest
    public let providers: [String: any Provider]
    public let pipeline: Pipeline
    /// `/mcp`: the manifest's MCP servers, and the pipeline that ends in them (every middleware
    /// but the terminal one); `nil` without `mcp_servers`.
    let mcp: MCPGateway?
    let mcpPipeline: Pipeline?
    /// Every key the manifest accepts, for logs to hide.
    public let credentials: KnownCredentials
    /// `server.admin_keys`, which operator routes need when there are any.
    let adminKeys: [KeyDigest]
    /// The routes the plugins add.
    private let routes: PluginRoutes
    private let plugins: [any Plugin]
    let health: ProviderHealthMonitor
    /// Where its retirement's shutdown runs.
    private let background: BackgroundWork
    /// Requests holding a lease; read and written with atomics, as every request enters and leaves.
    private let requests = ManagedAtomic(0)
    private let isRetired = ManagedAtomic(false)
    private let isShutDown = ManagedAtomic(false)

    private init(manifest: Manifest, providers: [String: any Provider], middlewares: [any Middleware], background: BackgroundWork,
                 signals: PluginSignals, mcp: MCPGateway?) {
        self.manifest = manifest
        self.background = background
        self.providers = providers
        self.pipeline = Pipeline(middlewares)
        self.mcp = mcp
        mcpPipeline = mcp.map { mcp in Pipeline(middlewares.filter { !type(of: $0).isTerminal }, end: { try await mcp.handle($0) }) }
        adminKeys = manifest.server.adminKeys.map(\.digest)
        credentials = KnownCredentials(adminKeys + pipeline.authenticators.flatMap(\.credentialDigests))
        self.plugins = manifest.providers.compactMap { providers[$0.name] } + middlewares
        routes = PluginRoutes(plugins.flatMap(\.routes))
        health = ProviderHealthMonitor(
            providers: manifest.providers.compactMap { entry in providers[entry.name].map { (entry.name, $0) } },
            unavailable: manifest.unavailableProviders, interval: .seconds(manifest.server.healthProbeIntervalSeconds), signals: signals)
    }

    /// Builds every plugin of a checked manifest (providers first, so the router can see them)
    /// and starts them. On failure, whatever was built is shut down again. Its plugins' background
    /// work, its health probes and, once retired, its shutdown run as jobs of `background`.
    public static func build(_ manifest: Manifest, upstream: UpstreamClient, background: BackgroundWork, registry: PluginRegistry,
                             environment: [String: String], logger: Logger,
                             database: (any StateDatabase)? = nil) async throws(ManifestErrors) -> GatewayGeneration {
        var built: [any Plugin] = []
        var errors: [ManifestError] = []
        func make(_ name: String, config: JSON, path: String, context: PluginContext) -> (any Plugin)? {
            guard let type = registry[name] else { return nil }
            do {
                let plugin = try type.build(config: PluginConfig(json: config, path: path), context: context)
                built.append(plugin)
                return plugin
            } catch var error as ManifestError {
                error.file = manifest.file
                errors.append(error)
            } catch {
                errors.append(ManifestError(file: manifest.file, path: path, "plugin \"\(name)\" could not be built: \(error)"))
            }
            return nil
        }

        let signals = PluginSignals()
        var providers: [String: any Provider] = [:]
        for entry in manifest.providers {
            var pluginLogger = logger
            pluginLogger[metadataKey: "provider"] = .string(entry.name)
            let context = PluginContext(logger: pluginLogger, upstream: upstream, background: background, manifest: manifest, providers: [:],
                                        environment: environment, signals: signals, database: database)
            providers[entry.name] = make(entry.plugin, config: entry.config, path: entry.path, context: context) as? any Provider
        }
        let context = PluginContext(logger: logger, upstream: upstream, background: background, manifest: manifest, providers: providers,
                                    environment: environment, signals: signals, database: database)
        let middlewares = manifest.pipeline.compactMap {
            make($0.plugin, config: $0.config, path: $0.path, context: context) as? any Middleware
        }
        if errors.isEmpty {
            for plugin in built {
                do {
                    try await plugin.start()
                } catch var error as ManifestError {  // `context.configError(…)` from start: a problem of the config's
                    error.file = manifest.file
                    errors.append(error)
                    break
                } catch {
                    errors.append(ManifestError(file: manifest.file, path: "", "plugin \"\(type(of: plugin).name)\" failed to start: \(error)"))
                    break
                }
            }
        }
        guard errors.isEmpty else {
            for plugin in built.reversed() { await plugin.shutdown() }
            throw ManifestErrors(errors)
        }
        let mcp = manifest.mcp.isEnabled ? MCPGateway(manifest.mcp, upstream: upstream, environment: environment, logger: logger) : nil
        await mcp?.start()
        let generation = GatewayGeneration(manifest: manifest, providers: providers, middlewares: middlewares, background: background,
                                           signals: signals, mcp: mcp)
        generation.health.start(on: background)
        return generation
    }

    /// The plugin route for a request: an exact one, else the longest prefix that matches.
    func route(method: String, path: Substring) -> PluginRoute? {
        routes.route(method: method, path: path)
    }

    /// Answers one HTTP request in-process, exactly as the server would (routing, parsing, the
    /// pipeline, errors in the front door's shape) but without a socket: for tests and hosts.
    public func respond(method: HTTPMethod = .POST, uri: String, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer(),
                        logger: Logger) async -> GatewayResponse {
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        return await FrontDoor(logger: logger, isDraining: { false })
            .respond(to: head, body: body, screening: FrontDoor.screen(head, generation: self), isReady: true)
    }

    /// Marks the generation as replaced: it shuts down once its last request has finished, as a
    /// job of its background work.
    public func retire() {
        isRetired.store(true, ordering: .sequentiallyConsistent)
        mcp?.retire()
        if requests.load(ordering: .sequentiallyConsistent) == 0 { shutDownInBackground() }
    }

    func enter() {
        requests.wrappingIncrement(ordering: .sequentiallyConsistent)
    }

    func leave() {
        // Whichever of the last `leave` and `retire` comes second sees the other (both are
        // sequentially consistent), so one of them shuts down; `shutdown` runs once however often called.
        let remaining = requests.wrappingDecrementThenLoad(ordering: .sequentiallyConsistent)
        if remaining == 0, isRetired.load(ordering: .sequentiallyConsistent) { shutDownInBackground() }
    }

    private func shutDownInBackground() {
        // Refused only once the gateway is stopping, after its drain: only a request that
        // outlived the drain (cancelled, yet still running) can then be the last to leave a
        // retired generation, and with nothing left to run it, that generation is not shut down.
        background.submit { [self] in await shutdown() }
    }

    /// Stops the health probes (in-flight probes are cancelled), then shuts plugins down in
    /// reverse order of building (once, however often it is called).
    public func shutdown() async {
        guard !isShutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await health.stop()
        await mcp?.shutdown()
        for plugin in plugins.reversed() { await plugin.shutdown() }
    }

    /// Whether `shutdown` has begun (for tests and hosts).
    public var hasShutDown: Bool { isShutDown.load(ordering: .sequentiallyConsistent) }
}
