import Kernel
import KernelTesting
import NIOHTTP1
import Testing

/// `rate-limit` (Sources/Plugins/RateLimit) with its in-memory buckets, through an in-process
/// gateway. The Redis store is exercised by Tests/Integration/test_rate_limit.py against a real
/// redis-server; RedisTests covers a Redis that cannot be reached.
@Suite struct RateLimitTests {
    static let keys = #"{"plugin": "api-key-auth", "config": {"keys": [{"name": "a", "key": "key-a"}, {"name": "b", "key": "key-b"}]}}"#
    static let models = #""m": {"targets": [{"provider": "p", "model": "up-m"}]}, "n": {"targets": [{"provider": "p", "model": "up-n"}]}"#

    /// A gateway of api-key-auth (keys a and b), rate-limit with `config`, and the router.
    static func manifest(_ config: String) -> String {
        scriptedManifest(pipeline: #"[\#(keys), {"plugin": "rate-limit", "config": \#(config)}, {"plugin": "router", "config": {"retries": 0}}]"#,
                         provider: #"{"reply": "hello from the script", "input_tokens": 1}"#, models: models)
    }

    static func key(_ name: String) -> HTTPHeaders { ["authorization": "Bearer key-\(name)"] }

    static func chat(_ gateway: TestGateway, key: String = "a", model: String = "m", maxTokens: Int? = nil,
                     stream: Bool = false) async throws -> TestResponse {
        var extra: [(String, JSON)] = [("stream", JSON(stream))]
        if let maxTokens { extra.append(("max_tokens", JSON(maxTokens))) }
        return try await gateway.send(.POST, "/v1/chat/completions", body: chatBody(model: model, "hello", extra), headers: Self.key(key))
    }

    @Test func requestsPerMinuteForEachKey() async throws {
        try await withGateway(Self.manifest(#"{"requests_per_minute": 2}"#)) { gateway async throws in
            let first = try await Self.chat(gateway)
            #expect(first.status == .ok)
            #expect(first.headers.first(name: "x-ratelimit-limit-requests") == "2")
            #expect(first.headers.first(name: "x-ratelimit-remaining-requests") == "1")
            #expect(first.headers.first(name: "x-ratelimit-reset-requests") == "30s")
            let second = try await Self.chat(gateway)
            #expect(second.status == .ok)
            #expect(second.headers.first(name: "x-ratelimit-remaining-requests") == "0")
            #expect(second.headers.first(name: "x-ratelimit-reset-requests") == "1m0s")

            let refused = try await Self.chat(gateway)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.error?["type"]?.string == "rate_limit_error")
            #expect(refused.error?["code"]?.string == "rate_limit_exceeded")
            #expect(refused.error?["message"]?.string == "Rate limit reached for key:a; retry in 30 s.")
            #expect(refused.headers.first(name: "retry-after") == "30")
            #expect(refused.headers.first(name: "x-ratelimit-limit-requests") == "2")
            #expect(refused.headers.first(name: "x-ratelimit-remaining-requests") == "0")
            #expect(refused.headers.first(name: "x-sluice-provider") == "none")

            // Another key has a budget of its own; the refused request never reached the provider.
            #expect(try await Self.chat(gateway, key: "b").headers.first(name: "x-ratelimit-remaining-requests") == "1")
            #expect(gateway.calls.count == 3)
        }
    }

    @Test func byModelEveryKeySharesTheModelsBudget() async throws {
        try await withGateway(Self.manifest(#"{"by": "model", "requests_per_minute": 1}"#)) { gateway async throws in
            #expect(try await Self.chat(gateway, key: "a", model: "m").status == .ok)
            let refused = try await Self.chat(gateway, key: "b", model: "m")
            #expect(refused.status == .tooManyRequests)
            #expect(refused.error?["message"]?.string?.contains("model:m") == true)
            #expect(try await Self.chat(gateway, key: "b", model: "n").status == .ok)
        }
    }

    @Test func globalOneBudgetForEveryone() async throws {
        try await withGateway(Self.manifest(#"{"by": "global", "requests_per_minute": 2}"#)) { gateway async throws in
            #expect(try await Self.chat(gateway, key: "a", model: "m").status == .ok)
            #expect(try await Self.chat(gateway, key: "b", model: "n").status == .ok)
            let refused = try await Self.chat(gateway, key: "b", model: "m")
            #expect(refused.status == .tooManyRequests)
            #expect(refused.error?["message"]?.string?.contains("for global;") == true)
        }
    }

    @Test func tokensPerMinuteReserveTheEstimate() async throws {
        // "hello": (5 + 3) / 4 = 2 prompt tokens, plus max_tokens or the configured estimate.
        try await withGateway(Self.manifest(#"{"tokens_per_minute": 1000, "estimated_output_tokens": 40}"#)) { gateway async throws in
            let capped = try await Self.chat(gateway, maxTokens: 100)
            #expect(capped.headers.first(name: "x-ratelimit-limit-tokens") == "1000")
            #expect(capped.headers.first(name: "x-ratelimit-remaining-tokens") == "898")
            #expect(capped.headers.first(name: "x-ratelimit-limit-requests") == nil)
        }
        try await withGateway(Self.manifest(#"{"tokens_per_minute": 1000, "estimated_output_tokens": 40}"#)) { gateway async throws in
            #expect(try await Self.chat(gateway).headers.first(name: "x-ratelimit-remaining-tokens") == "958")
        }
    }

    /// With a daily bucket (refilled by 100/86400 of a token a second) the numbers stay exact.
    @Test func aReservationIsSettledWithTheRealUsage() async throws {
        try await withGateway(Self.manifest(#"{"tokens_per_day": 100}"#)) { gateway async throws in
            // Reserves 2 + 88 = 90 of 100; the answer used 1 + 4 = 5, so 85 come back.
            let first = try await Self.chat(gateway, maxTokens: 88)
            #expect(first.status == .ok)
            #expect(first.headers.first(name: "x-ratelimit-remaining-tokens") == "10")
            #expect(first.headers.first(name: "x-ratelimit-reset-tokens") == "1296m0s")
            // Another 90 fit only once the first is settled (settling runs after the answer).
            let second = try await Self.untilAdmitted { try await Self.chat(gateway, maxTokens: 88, stream: true) }
            #expect(second.text == "hello from the script")
            #expect(second.headers.first(name: "x-ratelimit-remaining-tokens") == "5")
            // The stream is settled when it ends: 95 − 90 + 85 = 90 left, so 90 fit again.
            let third = try await Self.untilAdmitted { try await Self.chat(gateway, maxTokens: 88) }
            #expect(third.headers.first(name: "x-ratelimit-remaining-tokens") == "0")
        }
    }

    /// In memory, a whole answer's settlement happens on its own way out, before it is sent: the
    /// next request sees it without waiting.
    @Test func inMemoryAWholeAnswerIsSettledBeforeItIsSent() async throws {
        try await withGateway(Self.manifest(#"{"tokens_per_day": 100}"#)) { gateway async throws in
            #expect(try await Self.chat(gateway, maxTokens: 88).headers.first(name: "x-ratelimit-remaining-tokens") == "10")
            let second = try await Self.chat(gateway, maxTokens: 88)
            #expect(second.status == .ok)
            #expect(second.headers.first(name: "x-ratelimit-remaining-tokens") == "5")
        }
    }

    @Test func aFailedRequestGivesItsReservationBack() async throws {
        let manifest = scriptedManifest(
            pipeline: #"[\#(Self.keys), {"plugin": "rate-limit", "config": {"tokens_per_day": 100}}, {"plugin": "router", "config": {"retries": 0}}]"#,
            provider: #"{"fail_status": 503, "fail_times": 1}"#)
        try await withGateway(manifest) { gateway async throws in
            #expect(try await Self.chat(gateway, maxTokens: 88).status == .serviceUnavailable)
            let retried = try await Self.untilAdmitted { try await Self.chat(gateway, maxTokens: 88) }
            #expect(retried.status == .ok)
            #expect(retried.headers.first(name: "x-ratelimit-remaining-tokens") == "10")
        }
    }

    @Test func aRequestLargerThanTheBucketIsRefusedForGood() async throws {
        try await withGateway(Self.manifest(#"{"tokens_per_minute": 50}"#)) { gateway async throws in
            let refused = try await Self.chat(gateway, maxTokens: 100)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.error?["code"]?.string == "request_over_limit")
            #expect(refused.error?["message"]?.string?.hasPrefix("This request needs an estimated 102 tokens, more than the limit of 50 for key:a") == true)
            #expect(refused.headers.first(name: "retry-after") == nil)
            #expect(gateway.calls.isEmpty)
            // Nothing was taken: a small request still has the whole bucket.
            #expect(try await Self.chat(gateway, maxTokens: 8).headers.first(name: "x-ratelimit-remaining-tokens") == "40")
        }
    }

    @Test func refusalsComeInTheFrontDoorsShape() async throws {
        try await withGateway(Self.manifest(#"{"requests_per_minute": 1}"#)) { gateway async throws in
            let body: JSON = ["model": "m", "max_tokens": 10, "messages": [["role": "user", "content": "hi"]]]
            #expect(try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.key("a")).status == .ok)
            let refused = try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.key("a"))
            #expect(refused.status == .tooManyRequests)
            #expect(refused.body?["type"]?.string == "error")
            #expect(refused.body?["error"]?["type"]?.string == "rate_limit_error")
            #expect(refused.headers.first(name: "retry-after") == "60")
        }
    }

    @Test func listingModelsIsNotLimited() async throws {
        try await withGateway(Self.manifest(#"{"requests_per_minute": 1}"#)) { gateway async throws in
            for _ in 0..<3 {
                let list = try await gateway.send(.GET, "/v1/models", headers: Self.key("a"))
                #expect(list.status == .ok)
                #expect(list.headers.first(name: "x-ratelimit-limit-requests") == nil)
            }
            #expect(try await Self.chat(gateway).status == .ok)
        }
    }

    @Test func needsALimit() async {
        let errors = await manifestErrors(Self.manifest(#"{"by": "key"}"#))
        #expect(errors.map(\.path) == ["pipeline[1].config"])
        #expect(errors.first?.message == "set at least one of requests_per_minute, tokens_per_minute, tokens_per_day, tool_calls_per_minute")
        let typo = await manifestErrors(Self.manifest(#"{"by": "team", "requests_per_minute": 0}"#))
        #expect(Set(typo.map(\.path)) == ["pipeline[1].config.by", "pipeline[1].config.requests_per_minute"])
    }

    /// Sends until the answer is not a 429 (a settlement runs just after the answer it settles).
    static func untilAdmitted(_ send: () async throws -> TestResponse) async throws -> TestResponse {
        for _ in 0..<100 {
            let response = try await send()
            if response.status != .tooManyRequests { return response }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await send()
    }
}
