import CSystemd
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The gateway as a service: loads the manifest, listens, serves, and drains on shutdown.
/// A host program embeds Sluice by building one with its own `PluginRegistry` and running it in
/// a `ServiceGroup` (see the `sluice` CLI).
public final class Gateway: Service, HTTPResponder {
    public let configFile: String
    private let registry: PluginRegistry
    private let environment: [String: String]
    private let logger: Logger
    private let upstream = UpstreamClient()
    private let frontDoor: FrontDoor
    private let state = NIOLockedValueBox(State())
    /// Completed with the bound addresses once listening (for tests and embedding hosts).
    private let listening = NIOLockedValueBox<[SocketAddress]?>(nil)

    private struct State {
        var generation: GatewayGeneration?
        var isReady = false
    }

    public init(configFile: String, registry: PluginRegistry, environment: [String: String] = ProcessInfo.processInfo.environment,
                logger: Logger) {
        self.configFile = configFile
        self.registry = registry
        self.environment = environment
        self.logger = logger
        self.frontDoor = FrontDoor(logger: logger)
    }

    public var generation: GatewayGeneration? { state.withLockedValue { $0.generation } }
    public var boundAddresses: [SocketAddress] { listening.withLockedValue { $0 ?? [] } }

    // MARK: HTTPResponder

    public var maxBodyBytes: Int { generation?.manifest.server.maxBodyBytes ?? 8_388_608 }

    public func respond(to head: HTTPRequestHead, body: ByteBuffer) async -> GatewayResponse {
        let (generation, isReady) = state.withLockedValue { ($0.generation, $0.isReady) }
        return await frontDoor.respond(to: head, body: body, generation: generation, isReady: isReady)
    }

    public func bodyTooLarge(_ head: HTTPRequestHead) -> GatewayResponse {
        frontDoor.bodyTooLarge(head, limit: maxBodyBytes)
    }

    // MARK: Service

    public func run() async throws {
        let manifest = try ManifestReader(registry: registry, environment: environment).read(file: configFile)
        let generation = try await GatewayGeneration.build(manifest, upstream: upstream, registry: registry,
                                                           environment: environment, logger: logger)
        state.withLockedValue { $0.generation = generation }
        for warning in manifest.warnings { logger.warning("manifest", metadata: ["warning": .string(warning.description)]) }

        let server = HTTPServer(group: MultiThreadedEventLoopGroup.singleton, responder: self,
                                timeouts: .init(idle: .seconds(manifest.server.idleTimeoutSeconds),
                                                request: .seconds(manifest.server.headerTimeoutSeconds)),
                                logger: logger)
        do {
            try await listen(server, manifest: manifest)
        } catch {
            await shutdown(server, generation: generation, drainTimeout: .zero)
            throw error
        }
        state.withLockedValue { $0.isReady = true }
        let addresses = server.boundAddresses
        listening.withLockedValue { $0 = addresses }
        logger.info("sluice is serving", metadata: [
            "listen": .array(addresses.map { .string($0.hostAndPort) }),
            "models": .array(manifest.models.map { .string($0.name) }),
            "config": .string(configFile),
        ])
        SystemdNotifier.notify("READY=1\nSTATUS=serving \(manifest.models.count) models")

        try? await gracefulShutdown()

        logger.info("draining", metadata: ["in_flight": .stringConvertible(server.tracker.inFlight)])
        SystemdNotifier.notify("STOPPING=1\nSTATUS=draining")
        await shutdown(server, generation: generation, drainTimeout: .seconds(manifest.server.drainTimeoutSeconds))
        logger.info("stopped")
    }

    private func listen(_ server: HTTPServer, manifest: Manifest) async throws {
        let passed = Int(sd_listen_fds(1))
        if passed > 0 {
            for descriptor in SD_LISTEN_FDS_START..<(SD_LISTEN_FDS_START + Int32(passed)) {
                try await server.listen(onDescriptor: descriptor)
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

    /// Stops accepting, lets requests and streams in flight finish within `drainTimeout`,
    /// cancels the rest, then shuts plugins and the upstream client down.
    private func shutdown(_ server: HTTPServer, generation: GatewayGeneration, drainTimeout: Duration) async {
        state.withLockedValue { $0.isReady = false }
        await server.stopAccepting()
        let cancelled = await server.tracker.drain(timeout: drainTimeout)
        if cancelled > 0 { logger.warning("drain timeout: cancelled requests still in flight", metadata: ["cancelled": .stringConvertible(cancelled)]) }
        // Give cancelled streams a moment to write their last bytes before connections close.
        if cancelled > 0 { try? await Task.sleep(for: .milliseconds(100)) }
        await server.closeConnections()
        await generation.shutdown()
        upstream.shutdown()
    }
}

extension SocketAddress {
    /// `127.0.0.1:8080` or `[::1]:8080`, as admins write it in `server.listen`.
    public var hostAndPort: String {
        guard let ip = ipAddress, let port else { return description }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
