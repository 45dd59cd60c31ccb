import Kernel
import KernelTesting
import NIOHTTP1
import Testing
@testable import Plugins

/// `router` (Sources/Plugins/Routing): retries, fallbacks, weights and the circuit breaker through
/// an in-process gateway of scripted providers, and the picker and breaker on their own.
@Suite struct RouterTests {
    static let manifestText = """
        {"providers": {"a": {"plugin": "openai-compatible", "config": {"base_url": "http://127.0.0.1:1"}},
                       "b": {"plugin": "openai-compatible", "config": {"base_url": "http://127.0.0.1:1"}}},
         "models": {"main": {"targets": [{"provider": "a", "model": "a-model"}], "fallbacks": ["backup"]},
                    "backup": {"targets": [{"provider": "b", "model": "b-model"}]},
                    "weighted": {"targets": [{"provider": "a", "model": "heavy", "weight": 9}, {"provider": "b", "model": "light", "weight": 1}]}},
         "pipeline": [{"plugin": "router"}]}
        """

    /// Model `main` (provider a, falling back to model `backup` on provider b) and `weighted`
    /// (a 9 : b 1), with scripted providers configured by `a` and `b`.
    static func manifest(a: String = "{}", b: String = "{}", router: String) -> String {
        """
        {"providers": {"a": {"plugin": "scripted", "config": \(a)}, "b": {"plugin": "scripted", "config": \(b)}},
         "models": {"main": {"targets": [{"provider": "a", "model": "a-model"}], "fallbacks": ["backup"]},
                    "backup": {"targets": [{"provider": "b", "model": "b-model"}]},
                    "weighted": {"targets": [{"provider": "a", "model": "heavy", "weight": 9}, {"provider": "b", "model": "light", "weight": 1}]}},
         "pipeline": [{"plugin": "api-key-auth", "config": {"keys": [{"name": "all", "key": "key-all"}, {"name": "some", "key": "key-some", "models": ["backup"]}]}},
                      {"plugin": "router", "config": \(router)}]}
        """
    }

    static let auth: HTTPHeaders = ["authorization": "Bearer key-all"]

    @Test func retriesThenFallsBack() async throws {
        try await withGateway(Self.manifest(a: #"{"fail_status": 502}"#, router: #"{"retries": 1, "backoff_ms": 1}"#)) { gateway async throws in
            let answer = try await gateway.chat(model: "main", "hi", headers: Self.auth)
            #expect(answer.status == .ok)
            #expect(answer.headers.first(name: "x-sluice-provider") == "b")
            #expect(answer.headers.first(name: "x-sluice-attempts") == "3")
            #expect(gateway.calls.map(\.upstreamModel) == ["a-model", "a-model", "b-model"])
            #expect(gateway.calls.map(\.attempt) == [1, 2, 3])
        }
    }

    @Test func aRetryOfTheSameTargetCanSucceed() async throws {
        try await withGateway(Self.manifest(a: #"{"fail_status": 503, "fail_times": 1}"#, router: #"{"retries": 2, "backoff_ms": 1}"#)) { gateway async throws in
            let answer = try await gateway.chat(model: "main", "hi", headers: Self.auth)
            #expect(answer.headers.first(name: "x-sluice-provider") == "a")
            #expect(answer.headers.first(name: "x-sluice-attempts") == "2")
            #expect(gateway.calls(to: "b").isEmpty)
        }
    }

    @Test func doesNotRetryClientErrors() async throws {
        try await withGateway(Self.manifest(a: #"{"fail_status": 400}"#, router: #"{"retries": 2}"#)) { gateway async throws in
            let answer = try await gateway.chat(model: "main", "hi", headers: Self.auth)
            #expect(answer.status == .badRequest)
            #expect(answer.headers.first(name: "x-sluice-attempts") == "1")
            #expect(gateway.calls(to: "a").count == 1)
            #expect(gateway.calls(to: "b").isEmpty)
        }
    }

    @Test func aShortRetryAfterIsWaitedALongOneIsNot() async throws {
        try await withGateway(Self.manifest(a: #"{"fail_status": 429, "fail_times": 1, "retry_after": "0"}"#, b: #"{"fail_status": 503}"#,
                                            router: #"{"retries": 1}"#)) { gateway async throws in
            let answer = try await gateway.chat(model: "main", "hi", headers: Self.auth)
            #expect(answer.status == .ok)
            #expect(gateway.calls.map(\.upstreamModel) == ["a-model", "a-model"])
        }
        try await withGateway(Self.manifest(a: #"{"fail_status": 429, "retry_after": "120"}"#, b: #"{"fail_status": 429, "retry_after": "120"}"#,
                                            router: #"{"retries": 1, "max_retry_after_s": 30}"#)) { gateway async throws in
            let start = ContinuousClock.now
            let answer = try await gateway.chat(model: "main", "hi", headers: Self.auth)
            #expect(answer.status == .tooManyRequests)
            #expect(answer.headers.first(name: "retry-after") == "120")
            #expect(answer.error?["message"]?.string?.hasPrefix("The model `main` failed after 1 attempt") == true)
            #expect(gateway.calls.count == 1)
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    @Test func unknownModelIsModelNotFound() async throws {
        try await withGateway(Self.manifest(router: "{}")) { gateway async throws in
            let answer = try await gateway.chat(model: "nope", "hi", headers: Self.auth)
            #expect(answer.status == .notFound)
            #expect(answer.error?["code"]?.string == "model_not_found")
            #expect(answer.error?["param"]?.string == "model")
            #expect(answer.headers.first(name: "x-sluice-provider") == "none")
        }
    }

    @Test func weightsSpreadRequests() async throws {
        try await withGateway(Self.manifest(router: "{}")) { gateway async throws in
            for _ in 0..<20 { _ = try await gateway.chat(model: "weighted", "hi", headers: Self.auth) }
            #expect(gateway.calls(to: "a").count == 18)
            #expect(gateway.calls(to: "b").map(\.upstreamModel) == ["light", "light"])
        }
    }

    @Test func smoothWeightedRoundRobinSpreadsPicks() throws {
        let targets = try testManifest(Self.manifestText).model(named: "weighted")!.targets
        let picker = SmoothWeightedRoundRobin(weights: targets.map(\.weight))
        let firsts = (0..<1000).map { _ in targets[picker.order().first!].model }
        #expect(firsts.filter { $0 == "heavy" }.count == 900)
        #expect(Array(firsts.prefix(10)) == ["heavy", "heavy", "heavy", "heavy", "heavy", "light", "heavy", "heavy", "heavy", "heavy"])
        #expect(picker.order().map { targets[$0].model }.sorted() == ["heavy", "light"])
    }

    @Test func breakerOpensThenAdmitsOneTrial() {
        let breaker = CircuitBreaker(failureThreshold: 2, cooldown: .seconds(10))
        let start = ContinuousClock.now
        breaker.recordFailure(now: start)
        #expect(breaker.allows(now: start))
        breaker.recordFailure(now: start)
        #expect(!breaker.allows(now: start + .seconds(5)))
        #expect(breaker.allows(now: start + .seconds(11)))   // the half-open trial
        #expect(!breaker.allows(now: start + .seconds(11)))  // only one
        breaker.recordSuccess()
        #expect(breaker.allows())
    }

    @Test func openCircuitFailsFastWithoutCallingTheProvider() async throws {
        let router = #"{"retries": 0, "breaker_failures": 1, "breaker_cooldown_s": 60, "backoff_ms": 0}"#
        try await withGateway(Self.manifest(a: #"{"fail_status": 502}"#, b: #"{"fail_status": 502}"#, router: router)) { gateway async throws in
            let first = try await gateway.chat(model: "main", "hi", headers: Self.auth)
            #expect(first.status == .badGateway)
            #expect(first.headers.first(name: "x-sluice-attempts") == "2")
            let second = try await gateway.chat(model: "main", "hi", headers: Self.auth)
            #expect(second.status == .serviceUnavailable)
            #expect(second.error?["code"]?.string == "circuit_open")
            #expect(second.headers.first(name: "x-sluice-attempts") == "0")
            // `backup`'s own target is the one `main` fell back to: one circuit, open for both.
            let third = try await gateway.chat(model: "backup", "hi", headers: Self.auth)
            #expect(third.error?["code"]?.string == "circuit_open")
            #expect(gateway.calls.map(\.upstreamModel) == ["a-model", "b-model"])
        }
    }

    @Test func listsOnlyAllowedModels() async throws {
        try await withGateway(Self.manifest(router: "{}")) { gateway async throws in
            let some = try await gateway.send(.GET, "/v1/models", headers: ["authorization": "Bearer key-some"])
            #expect(some.bodyText == #"{"object":"list","data":[{"id":"backup","object":"model","created":0,"owned_by":"sluice"}]}"#)
            let all = try await gateway.send(.GET, "/v1/models", headers: Self.auth)
            #expect(all.body?["data"]?.elements.compactMap { $0["id"]?.string } == ["main", "backup", "weighted"])
        }
    }
}
