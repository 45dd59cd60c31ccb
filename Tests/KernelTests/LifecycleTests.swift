import Foundation
import Logging
import ServiceLifecycle
import KernelTesting
import Testing
@testable import Kernel

/// The gateway's shutdown order (docs/ARCHITECTURE.md, "Threads and tasks") as observed from its
/// plugins, and that nothing it started outlives its `run`.
@Suite struct LifecycleTests {
    static func manifest(run: String) -> String {
        """
        {"server": {"listen": ["127.0.0.1:0"], "drain_timeout_s": 1},
         "providers": {"p": {"plugin": "hanging-probe", "config": {"run": "\(run)"}}},
         "models": {"m": {"targets": [{"provider": "p", "model": "x"}]}},
         "pipeline": [{"plugin": "shutdown-recorder", "config": {"run": "\(run)"}}, {"plugin": "answer"}]}
        """
    }

    @Test func gracefulShutdownStopsEverythingInOrderBeforeRunReturns() async throws {
        let run = "shutdown-order-\(UUID().uuidString)"
        let file = TestFolder.make("manifest") + "/plugins.json"
        try Self.manifest(run: run).write(toFile: file, atomically: true, encoding: .utf8)
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let gateway = Gateway(configFile: file, registry: testRegistry(), environment: [:], logger: logger)
        let group = ServiceGroup(services: [gateway], logger: logger)

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await LifecycleEvents.wait(for: "probe began", in: run))
            let deadline = ContinuousClock.now + .seconds(10)
            while gateway.boundAddresses.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(!gateway.boundAddresses.isEmpty, "serving")
            #expect(gateway.generation?.health.isProbing == true)
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }

        #expect(LifecycleEvents.of(run) == [
            "probe began",
            // Probes stop before any plugin shuts down, ...
            "probe cancelled",
            // ... plugins shut down in reverse build order (middlewares after providers were built) ...
            "middleware shut down",
            // ... with the upstream client still working ...
            "upstream during shutdown: client working",
            "provider shut down",
            // ... and the job a plugin left behind ran, off the event loops, before `run` returned.
            "job left by shutdown ended on sluice-bgwork",
        ])
        #expect(gateway.generation?.hasShutDown == true)
        #expect(gateway.background.runningJobs == 0)
        #expect(!gateway.background.executor.isRunning)
        #expect(!gateway.upstream.hasThread)
        // Stopped means stopped: later work is refused rather than run by nobody.
        #expect(!gateway.background.submit { Issue.record("ran after the gateway stopped") })
        await #expect(throws: UpstreamError.shutdown) {
            _ = try await gateway.upstream.send(UpstreamRequest(method: .GET, url: "http://127.0.0.1:9/"))
        }
    }

    @Test func aRetiredGenerationShutsDownThroughBackgroundWorkAfterItsLastRequest() async throws {
        let run = "retire-\(UUID().uuidString)"
        let manifest = try ManifestReader(registry: testRegistry(), environment: [:]).read(Array(Self.manifest(run: run).utf8), file: "m.json")
        let background = BackgroundWork()
        let generation = try await GatewayGeneration.build(manifest, upstream: UpstreamClient(), background: background,
                                                           registry: testRegistry(), environment: [:], logger: Logger(label: "test"))
        await withDiscardingTaskGroup { group in
            // Jobs wait for the runner: not even the probes have begun yet.
            try? await Task.sleep(for: .milliseconds(100))
            #expect(LifecycleEvents.of(run).isEmpty)
            group.addTask { await background.run() }
            #expect(await LifecycleEvents.wait(for: "probe began", in: run))

            generation.enter()
            generation.retire()
            try? await Task.sleep(for: .milliseconds(200))
            #expect(!generation.hasShutDown, "a request still holds the generation")
            #expect(LifecycleEvents.of(run) == ["probe began"])

            generation.leave()
            #expect(await LifecycleEvents.wait(for: "provider shut down", in: run))
            #expect(generation.hasShutDown)
            background.finish()
        }
        #expect(Array(LifecycleEvents.of(run).prefix(3)) == ["probe began", "probe cancelled", "middleware shut down"])
        #expect(LifecycleEvents.of(run).last == "job left by shutdown ended on sluice-bgwork")
        #expect(!generation.health.isProbing)
    }
}
