import CSystemd
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// The gateway as a service: loads the manifest, listens, serves, reloads on SIGHUP, and drains
/// on shutdown. A host program embeds Sluice by building one with its own `PluginRegistry` and
/// running it in a `ServiceGroup` (see the `sluice` CLI).
public final class Gateway: Service {
    public let configFile: String
    private let registry: PluginRegistry
    private let environment: [String: String]
    private let logger: Logger
    private let upstream = UpstreamClient()
    /// What the server asks; it holds the generation that serves requests now.
    private let responder: GatewayResponder
    private let state = NIOLockedValueBox(State())
    /// Reloads run one at a time.
    private let reloading = NIOLockedValueBox(false)
    /// The manifest's state database: open before the first build, closed after the drain.
    private let stateDatabase = GatewayStateDatabase()

    private struct State {
        var addresses: [SocketAddress] = []
        var server: HTTPServer?
    }

    public init(configFile: String, registry: PluginRegistry, environment: [String: String] = ProcessInfo.processInfo.environment,
                logger: Logger) {
        self.configFile = configFile
        self.registry = registry
        self.environment = environment
        self.logger = logger
        responder = GatewayResponder(logger: logger)
    }

    public var generation: GatewayGeneration? { responder.generation }
    /// The addresses listened on, once serving (for tests and embedding hosts).
    public var boundAddresses: [SocketAddress] { state.withLockedValue { $0.addresses } }

    // MARK: Service

    public func run() async throws {
        let manifest = try reader.read(file: configFile)
        try await stateDatabase.open(for: manifest, logger: logger)
        let generation: GatewayGeneration
        do { generation = try await build(manifest) } catch {
            await stateDatabase.close()
            throw error
        }
        responder.serve(generation)

        let server = HTTPServer(group: MultiThreadedEventLoopGroup.singleton, responder: responder,
                                limits: .init(idle: .seconds(manifest.server.idleTimeoutSeconds),
                                              request: .seconds(manifest.server.headerTimeoutSeconds),
                                              maxConnections: manifest.server.maxConnections))
        do {
            try await listen(server, manifest: manifest)
        } catch {
            await drain(server, drainTimeout: .zero)
            throw error
        }
        let addresses = server.boundAddresses
        state.withLockedValue { state in
            state.addresses = addresses
            state.server = server
        }
        responder.setReady(true)
        logger.info("sluice is serving", metadata: [
            "listen": .array(addresses.map { .string($0.hostAndPort) }),
            "models": .array(manifest.models.map { .string($0.name) }),
            "config": .string(configFile),
        ])
        SystemdNotifier.notify("READY=1\nSTATUS=\(status(server))")
        StartupPages.release()

        // While serving, reloads and the watchdog run as child tasks; the shutdown signal ends
        // them, then the drain runs with a child that exits on a second signal.
        await withDiscardingTaskGroup { group in
            group.addTask { await self.reloadOnHangup() }
            group.addTask { await SystemdWatchdog(group: MultiThreadedEventLoopGroup.singleton).run { [self] in status(server) } }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.exitOnSecondSignal() }
            logger.info("draining", metadata: ["in_flight": .stringConvertible(server.tracker.inFlight)])
            SystemdNotifier.notify("STOPPING=1\nSTATUS=draining \(server.tracker.inFlight) requests")
            await drain(server, drainTimeout: .seconds(self.generation?.manifest.server.drainTimeoutSeconds ?? 30))
            group.cancelAll()
        }
        logger.info("stopped")
    }

    // MARK: Reload

    /// Loads the manifest again. A valid one replaces the pipeline for new requests (requests in
    /// flight finish on the old one, whose plugins shut down after its last request); an invalid
    /// one is logged and the old one keeps serving. Listeners are kept. Returns the errors, if any.
    @discardableResult
    public func reload() async -> ManifestErrors? {
        let busy = reloading.withLockedValue { busy in
            defer { busy = true }
            return busy
        }
        guard !busy else {
            logger.warning("reload already in progress; ignored")
            return nil
        }
        defer { reloading.withLockedValue { $0 = false } }

        SystemdNotifier.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds)\nSTATUS=reloading \(configFile)")
        let server = state.withLockedValue { $0.server }
        do {
            let manifest = try reader.read(file: configFile)
            stateDatabase.warnIfChanged(manifest, logger: logger)
            let old = responder.serve(try await build(manifest))
            if let old { warnAboutRestartOnlySettings(old: old.manifest.server, new: manifest.server) }
            old?.retire()
            logger.info("reloaded", metadata: ["models": .array(manifest.models.map { .string($0.name) }), "config": .string(configFile)])
            SystemdNotifier.notify("READY=1\nSTATUS=\(server.map(status) ?? "reloaded")")
            return nil
        } catch {
            for problem in error.errors { logger.error("reload refused; the previous manifest keeps serving", metadata: ["error": .string(problem.description)]) }
            let first = error.errors.first?.description ?? "invalid manifest"
            SystemdNotifier.notify("READY=1\nSTATUS=reload failed (\(error.errors.count) errors, first: \(first)); serving the previous manifest")
            return error
        }
    }

    private func reloadOnHangup() async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            guard !Task.isCancelled else { return }
            logger.info("SIGHUP: reloading", metadata: ["config": .string(configFile)])
            await reload()
        }
    }

    private func warnAboutRestartOnlySettings(old: ServerSettings, new: ServerSettings) {
        if old.listen != new.listen || old.idleTimeoutSeconds != new.idleTimeoutSeconds || old.headerTimeoutSeconds != new.headerTimeoutSeconds
            || old.maxConnections != new.maxConnections {
            logger.warning("server.listen, idle_timeout_s, header_timeout_s and max_connections take effect on restart; the running listeners are kept")
        }
    }

    // MARK: Start and stop

    private var reader: ManifestReader { ManifestReader(registry: registry, environment: environment) }

    private func build(_ manifest: Manifest) async throws(ManifestErrors) -> GatewayGeneration {
        let generation = try await GatewayGeneration.build(manifest, upstream: upstream, registry: registry,
                                                           environment: environment, logger: logger, database: stateDatabase.current)
        for warning in manifest.warnings { logger.warning("manifest", metadata: ["warning": .string(warning.description)]) }
        return generation
    }

    private func listen(_ server: HTTPServer, manifest: Manifest) async throws {
        let passed = SystemdSockets.passed()
        if !passed.isEmpty {
            for socket in passed {
                try await server.listen(onDescriptor: socket.descriptor)
                logger.info("serving on a socket passed by systemd", metadata: ["name": .string(socket.name)])
            }
            return
        }
        for text in manifest.server.listen {
            guard let address = ListenAddress(text) else { continue }
            do {
                try await server.listen(on: address)
            } catch {
                throw ManifestErrors([ManifestError(file: configFile, path: "server.listen", "cannot listen on \(address): \(error)")])
            }
        }
    }

    /// Stops accepting, lets requests and streams in flight finish within `drainTimeout`, cancels
    /// the rest (streams get a shutdown error event), then shuts plugins and the upstream client down.
    private func drain(_ server: HTTPServer, drainTimeout: Duration) async {
        responder.startDraining()
        let cancelled = await server.drain(timeout: drainTimeout)
        if cancelled > 0 {
            logger.warning("drain timeout: cancelled requests still in flight", metadata: ["cancelled": .stringConvertible(cancelled)])
            // Let cancelled streams write their error event before connections close.
            let deadline = ContinuousClock.now + .seconds(1)
            while server.tracker.inFlight > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        }
        await server.closeConnections()
        await generation?.shutdown()
        await stateDatabase.close()
        upstream.shutdown()
    }

    private func exitOnSecondSignal() async {
        for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
            guard !Task.isCancelled else { return }
            logger.critical("second \(signal) during drain: exiting now")
            exit(1)
        }
    }

    private func status(_ server: HTTPServer) -> String {
        let models = generation?.manifest.models.count ?? 0
        return "serving \(models) models; \(server.tracker.inFlight) requests in flight"
    }
}

extension SocketAddress {
    /// `127.0.0.1:8080` or `[::1]:8080`, as admins write it in `server.listen`.
    public var hostAndPort: String {
        guard let ip = ipAddress, let port else { return description }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
