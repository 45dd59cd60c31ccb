import Kernel
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing
@testable import Plugins

/// A provider that fails with the given statuses, in order, then answers.
final class SequenceProvider: Provider, @unchecked Sendable {
    static let name = "sequence"
    let failures: NIOLockedValueBox<[Int]>
    let calls = NIOLockedValueBox<[String]>([])
    init(failures: [Int]) { self.failures = NIOLockedValueBox(failures) }
    init(settings: NoSettings, context: PluginContext) throws { failures = NIOLockedValueBox([]) }
    func send(_ call: ProviderCall) async throws -> GatewayResponse {
        calls.withLockedValue { $0.append(call.upstreamModel) }
        if let status = failures.withLockedValue({ $0.isEmpty ? nil : $0.removeFirst() }) {
            throw GatewayError(HTTPResponseStatus(statusCode: status), type: "upstream_error", "scripted \(status)")
        }
        return .json(["model": JSON(call.upstreamModel)])
    }
}

@Suite struct RouterTests {
    static let manifestText = """
        {"providers": {"a": {"plugin": "openai-compatible", "config": {"base_url": "http://127.0.0.1:1"}},
                       "b": {"plugin": "openai-compatible", "config": {"base_url": "http://127.0.0.1:1"}}},
         "models": {"main": {"targets": [{"provider": "a", "model": "a-model"}], "fallbacks": ["backup"]},
                    "backup": {"targets": [{"provider": "b", "model": "b-model"}]},
                    "weighted": {"targets": [{"provider": "a", "model": "heavy", "weight": 9}, {"provider": "b", "model": "light", "weight": 1}]}},
         "pipeline": [{"plugin": "router"}]}
        """

    func router(retries: Int, a: SequenceProvider, b: SequenceProvider) throws -> Router {
        let manifest = try testManifest(Self.manifestText)
        return try Router.build(config: PluginConfig(json: ["retries": JSON(retries), "timeout_s": 5, "backoff_ms": 1], path: "pipeline[0].config"),
                          context: testContext(manifest: manifest, providers: ["a": a, "b": b]))
    }

    @Test func retriesThenFallsBack() async throws {
        let a = SequenceProvider(failures: [502, 503]), b = SequenceProvider(failures: [])
        let response = try await router(retries: 1, a: a, b: b).handle(testRequest(model: "main")) { _ in fatalError() }
        #expect(response.provider == "b")
        #expect(a.calls.withLockedValue { $0 } == ["a-model", "a-model"])
        #expect(b.calls.withLockedValue { $0 } == ["b-model"])
    }

    @Test func doesNotRetryClientErrors() async throws {
        let a = SequenceProvider(failures: [400]), b = SequenceProvider(failures: [])
        await #expect(throws: GatewayError.self) {
            try await router(retries: 2, a: a, b: b).handle(testRequest(model: "main")) { _ in fatalError() }
        }
        #expect(a.calls.withLockedValue { $0.count } == 1)
        #expect(b.calls.withLockedValue { $0.count } == 0)
    }

    @Test func unknownModelIsModelNotFound() async throws {
        do {
            _ = try await router(retries: 0, a: .init(failures: []), b: .init(failures: [])).handle(testRequest(model: "nope")) { _ in fatalError() }
            Issue.record("expected 404")
        } catch let error as GatewayError {
            #expect(error.status == .notFound)
            #expect(error.code == "model_not_found")
        }
    }

    @Test func smoothWeightedRoundRobinSpreadsPicks() throws {
        let targets = try testManifest(Self.manifestText).model(named: "weighted")!.targets
        let picker = SmoothWeightedRoundRobin(targets)
        let firsts = (0..<1000).map { _ in picker.order().first!.model }
        #expect(firsts.filter { $0 == "heavy" }.count == 900)
        #expect(Array(firsts.prefix(10)) == ["heavy", "heavy", "heavy", "heavy", "heavy", "light", "heavy", "heavy", "heavy", "heavy"])
        #expect(picker.order().map(\.model).sorted() == ["heavy", "light"])
    }

    @Test func breakerOpensThenAdmitsOneTrial() {
        let breaker = CircuitBreaker(failureThreshold: 2, cooldown: .seconds(10))
        let start = ContinuousClock.now
        breaker.recordFailure("t", now: start)
        #expect(breaker.allows("t", now: start))
        breaker.recordFailure("t", now: start)
        #expect(!breaker.allows("t", now: start + .seconds(5)))
        #expect(breaker.allows("t", now: start + .seconds(11)))   // the half-open trial
        #expect(!breaker.allows("t", now: start + .seconds(11)))  // only one
        breaker.recordSuccess("t")
        #expect(breaker.allows("t"))
    }

    @Test func openCircuitFailsFastWithoutCallingTheProvider() async throws {
        let a = SequenceProvider(failures: [502, 502, 502, 502]), b = SequenceProvider(failures: [502, 502, 502, 502])
        let manifest = try testManifest(Self.manifestText)
        let router = try Router.build(config: PluginConfig(json: ["retries": 0, "breaker_failures": 1, "breaker_cooldown_s": 60, "backoff_ms": 0],
                                                     path: "pipeline[0].config"),
                                context: testContext(manifest: manifest, providers: ["a": a, "b": b]))
        for _ in 0..<2 {
            await #expect(throws: GatewayError.self) { try await router.handle(testRequest(model: "main")) { _ in fatalError() } }
        }
        #expect(a.calls.withLockedValue { $0.count } == 1)
        #expect(b.calls.withLockedValue { $0.count } == 1)
        do {
            _ = try await router.handle(testRequest(model: "main")) { _ in fatalError() }
        } catch let error as GatewayError {
            #expect(error.status == .serviceUnavailable)
            #expect(error.code == "circuit_open")
        }
    }

    @Test func listsOnlyAllowedModels() async throws {
        let request = testRequest(model: "", operation: .listModels)
        request.context.identity = CallerIdentity(name: "k", allowedModels: ["backup"])
        let response = try await router(retries: 0, a: .init(failures: []), b: .init(failures: [])).handle(request) { _ in fatalError() }
        guard case .whole(let body) = response.body else { Issue.record("expected a body"); return }
        #expect(String(buffer: body) == #"{"object":"list","data":[{"id":"backup","object":"model","created":0,"owned_by":"sluice"}]}"#)
    }
}
