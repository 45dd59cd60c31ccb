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
    /// Its thread runs from the first upstream call to step 5 of the shutdown (`run`).
    let upstream = UpstreamClient()
    /// Jobs that outlive a request or a call; run by `run` as a child task.
    let background = BackgroundWork()
    /// What the server asks; it holds the generation that serves requests now.
    private let responder: GatewayResponder
    private let state = NIOLockedValueBox(State())
    /// Reloads run one at a time.
    private let reloading = NIOLockedValueBox(false)
    /// The manifest's state database: open before the first build, closed after the last
    /// background job (step 5 of the shutdown, `run`); its pool runs as a child task of `run`.
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

    /// Serves until graceful shutdown, then stops everything it started, in this order
    /// (docs/ARCHITECTURE.md, "Threads and tasks"):
    ///
    /// 1. stop accepting: `/ready` turns 503, listeners close;
    /// 2. drain: requests and streams in flight get `drain_timeout_s`, the rest are cancelled,
    ///    connections close;
    /// 3. the serving generation shuts down: its health probes are cancelled and awaited, then its
    ///    plugins shut down in reverse order (they may still log and call upstream; `tracing`
    ///    flushes its exporter here);
    /// 4. background work stops accepting; its jobs left (settles, cache saves, ledger flushes,
    ///    retired generations' shutdowns) get `BackgroundWork.defaultGrace`, then are cancelled;
    ///    the `sluice-bgwork` thread ends;
    /// 5. the state database closes (PostgreSQL: its connection pool stops), now that nothing
    ///    is left to write to it;
    /// 6. the upstream client's thread ends (a transfer still open fails with `.shutdown`);
    /// 7. the log writers deliver what they hold, so "stopped" is out when `run` returns.
    ///
    /// No task or thread it started outlives it.
    public func run() async throws {
        let failure = await withDiscardingTaskGroup { group -> (any Error)? in
            // The database's work outlives the background work: a job may write to it up to the end.
            group.addTask { await self.stateDatabase.run() }
            let failure = await withDiscardingTaskGroup { group -> (any Error)? in
                group.addTask { await self.background.run() }
                let failure: (any Error)?
                do {
                    try await serveUntilShutdown()  // steps 1 to 3
                    failure = nil
                } catch {
                    failure = error
                }
                background.finish()  // step 4: the group returns once the last job has ended
                return failure
            }
            await stateDatabase.close()  // step 5, also when serving failed (or never began)
            return failure
        }
        upstream.shutdown()  // step 6
        logger.info("stopped")
        LogWriter.flushAll(timeout: .seconds(2))  // step 7
        if let failure { throw failure }
    }

    /// What the gateway does between its start and the end of its serving generation's shutdown.
    private func serveUntilShutdown() async throws {
        let manifest = try reader.read(file: configFile)
        try await stateDatabase.open(for: manifest, logger: logger)  // closed by `run`, whatever happens here
        responder.serve(try await build(manifest))

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
        // SIGHUP is trapped before READY=1: a reload asked for the moment the gateway says it is
        // ready (`systemctl reload` right after start) must not meet SIGHUP's default, which ends
        // the process. The sequence keeps a signal that comes before it is read.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
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
            group.addTask { await self.reloadOnHangup(hangups) }
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

    private func reloadOnHangup(_ hangups: UnixSignalsSequence) async {
        for await _ in hangups {
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
        let generation = try await GatewayGeneration.build(manifest, upstream: upstream, background: background, registry: registry,
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
    /// the rest (streams get a shutdown error event), then shuts the serving generation down.
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
