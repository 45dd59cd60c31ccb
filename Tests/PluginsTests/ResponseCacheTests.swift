import Kernel
import KernelTesting
import NIOHTTP1
import Testing

/// `cache` (Sources/Plugins/Cache) in memory, through an in-process gateway. The Redis store is
/// exercised by Tests/Integration/test_cache.py against a real redis-server.
@Suite struct ResponseCacheTests {
    static let keys = #"{"plugin": "api-key-auth", "config": {"keys": [{"name": "a", "key": "key-a"}, {"name": "b", "key": "key-b"}]}}"#

    static func manifest(_ config: String = "{}", provider: String = #"{"reply": "hello from the script"}"#) -> String {
        scriptedManifest(pipeline: #"[\#(keys), {"plugin": "cache", "config": \#(config)}, {"plugin": "router", "config": {"retries": 0}}]"#,
                         provider: provider)
    }

    static func ask(_ gateway: TestGateway, _ text: String = "hello", key: String = "a", stream: Bool = false,
                    extra: [(String, JSON)] = [("temperature", 0)], headers: HTTPHeaders = [:]) async throws -> TestResponse {
        var headers = headers
        headers.add(name: "authorization", value: "Bearer key-\(key)")
        return try await gateway.send(.POST, "/v1/chat/completions", body: chatBody(text, extra + [("stream", JSON(stream))]), headers: headers)
    }

    @Test func aMissThenAHit() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let miss = try await Self.ask(gateway)
            #expect(miss.status == .ok)
            #expect(miss.headers.first(name: "x-sluice-cache") == "miss")
            #expect(miss.headers.first(name: "x-sluice-provider") == "p")
            let hit = try await Self.ask(gateway)
            #expect(hit.status == .ok)
            #expect(hit.headers.first(name: "x-sluice-cache") == "hit")
            #expect(hit.headers.first(name: "x-sluice-provider") == "cache")
            #expect(hit.bodyText == miss.bodyText)
            // Fields that do not change the answer are not part of the key; others are.
            #expect(try await Self.ask(gateway, extra: [("temperature", 0), ("user", "someone")]).headers.first(name: "x-sluice-cache") == "hit")
            #expect(try await Self.ask(gateway, "hello?").headers.first(name: "x-sluice-cache") == "miss")
            #expect(gateway.calls.count == 2)
        }
    }

    @Test func deterministicModeCachesOnlyTemperatureZero() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            for _ in 0..<2 {
                #expect(try await Self.ask(gateway, extra: [("temperature", 0.7)]).headers.first(name: "x-sluice-cache") == "bypass")
                #expect(try await Self.ask(gateway, extra: []).headers.first(name: "x-sluice-cache") == "bypass")
            }
            #expect(gateway.calls.count == 4)
        }
        try await withGateway(Self.manifest(#"{"mode": "all"}"#)) { gateway async throws in
            #expect(try await Self.ask(gateway, extra: [("temperature", 0.7)]).headers.first(name: "x-sluice-cache") == "miss")
            #expect(try await Self.ask(gateway, extra: [("temperature", 0.7)]).headers.first(name: "x-sluice-cache") == "hit")
        }
        try await withGateway(Self.manifest(#"{"models": ["other"]}"#)) { gateway async throws in
            #expect(try await Self.ask(gateway).headers.first(name: "x-sluice-cache") == "bypass")
            #expect(try await Self.ask(gateway).headers.first(name: "x-sluice-cache") == "bypass")
        }
    }

    @Test func aStreamIsRecordedAndReplayed() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let streamed = try await Self.ask(gateway, stream: true)
            #expect(streamed.headers.first(name: "x-sluice-cache") == "miss")
            #expect(streamed.text == "hello from the script")

            let replayed = try await Self.ask(gateway, stream: true)
            #expect(replayed.headers.first(name: "x-sluice-cache") == "hit")
            #expect(replayed.headers.first(name: "content-type") == "text/event-stream")
            #expect(replayed.events == streamed.events)

            // The same answer, whole, for a client that does not stream.
            let whole = try await Self.ask(gateway)
            #expect(whole.headers.first(name: "x-sluice-cache") == "hit")
            #expect(whole.text == "hello from the script")
            #expect(whole.body?["choices"]?[0]?["finish_reason"]?.string == "stop")
            #expect(whole.body?["usage"]?["completion_tokens"]?.int == 4)
            #expect(gateway.calls.count == 1)
        }
    }

    @Test func aWholeAnswerIsReplayedAsAStream() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            _ = try await Self.ask(gateway)
            let streamed = try await Self.ask(gateway, stream: true)
            #expect(streamed.headers.first(name: "x-sluice-cache") == "hit")
            #expect(streamed.text == "hello from the script")
            #expect(streamed.events?.last?.isDone == true)
            #expect(gateway.calls.count == 1)
        }
    }

    @Test func cacheControlNoStoreAndNoCache() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            // no-store: read but never written.
            #expect(try await Self.ask(gateway, headers: ["cache-control": "no-store"]).headers.first(name: "x-sluice-cache") == "miss")
            #expect(try await Self.ask(gateway, headers: ["cache-control": "No-Store"]).headers.first(name: "x-sluice-cache") == "miss")
            #expect(gateway.calls.count == 2)
            // no-cache: not read, but the fresh answer is written.
            #expect(try await Self.ask(gateway, headers: ["cache-control": "max-age=0, no-cache"]).headers.first(name: "x-sluice-cache") == "bypass")
            #expect(gateway.calls.count == 3)
            #expect(try await Self.untilHit { try await Self.ask(gateway) }.headers.first(name: "x-sluice-cache") == "hit")
            let before = gateway.calls.count
            #expect(try await Self.ask(gateway, headers: ["cache-control": "no-cache"]).headers.first(name: "x-sluice-cache") == "bypass")
            #expect(try await Self.ask(gateway, headers: ["cache-control": "no-cache, no-store"]).headers.first(name: "x-sluice-cache") == "bypass")
            #expect(gateway.calls.count == before + 2)
        }
    }

    @Test func eachCallerHasItsOwnEntriesUnlessShared() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            _ = try await Self.ask(gateway, key: "a")
            #expect(try await Self.ask(gateway, key: "b").headers.first(name: "x-sluice-cache") == "miss")
            #expect(try await Self.ask(gateway, key: "a").headers.first(name: "x-sluice-cache") == "hit")
            #expect(gateway.calls.count == 2)
        }
        try await withGateway(Self.manifest(#"{"shared": true}"#)) { gateway async throws in
            _ = try await Self.ask(gateway, key: "a")
            #expect(try await Self.ask(gateway, key: "b").headers.first(name: "x-sluice-cache") == "hit")
            #expect(gateway.calls.count == 1)
        }
    }

    @Test func aStreamWithAnEventThatIsNotJSONIsNotStored() async throws {
        let chunk = #"{"id":"c","object":"chat.completion.chunk","model":"up-m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}"#
        let provider = #"{"stream_events": [\#(JSON(chunk).description), "not json", "[DONE]"]}"#
        try await withGateway(Self.manifest(provider: provider)) { gateway async throws in
            let first = try await Self.ask(gateway, stream: true)
            #expect(first.events?.map(\.data) == [chunk, "not json", "[DONE]"])
            #expect(first.headers.first(name: "x-sluice-cache") == "miss")
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await Self.ask(gateway, stream: true).headers.first(name: "x-sluice-cache") == "miss")
            #expect(gateway.calls.count == 2)
        }
    }

    @Test func failuresAreNotStored() async throws {
        try await withGateway(Self.manifest(provider: #"{"fail_status": 503, "fail_times": 1}"#)) { gateway async throws in
            #expect(try await Self.ask(gateway).status == .serviceUnavailable)
            let answered = try await Self.ask(gateway)
            #expect(answered.status == .ok)
            #expect(answered.headers.first(name: "x-sluice-cache") == "miss")
            #expect(try await Self.untilHit { try await Self.ask(gateway) }.headers.first(name: "x-sluice-cache") == "hit")
            #expect(gateway.calls.count == 2)
        }
    }

    @Test func identicalRequestsInFlightShareOneCall() async throws {
        try await withGateway(Self.manifest(provider: #"{"reply": "slow answer", "delay_ms": 200}"#)) { gateway async throws in
            async let first = Self.ask(gateway)
            async let second = Self.ask(gateway)
            let answers = try await [first, second]
            #expect(answers.map(\.status) == [.ok, .ok])
            #expect(answers.map(\.text) == ["slow answer", "slow answer"])
            #expect(Set(answers.compactMap { $0.headers.first(name: "x-sluice-cache") }) == ["miss", "hit"])
            #expect(gateway.calls.count == 1)
        }
    }

    @Test func entriesExpire() async throws {
        try await withGateway(Self.manifest(#"{"ttl_s": 0.5}"#)) { gateway async throws in
            _ = try await Self.ask(gateway)
            #expect(try await Self.ask(gateway).headers.first(name: "x-sluice-cache") == "hit")
            try await Task.sleep(for: .milliseconds(600))
            #expect(try await Self.ask(gateway).headers.first(name: "x-sluice-cache") == "miss")
            #expect(gateway.calls.count == 2)
        }
    }

    @Test func anthropicAnswersAreKeptApart() async throws {
        try await withGateway(Self.manifest(#"{"mode": "all"}"#)) { gateway async throws in
            let body: JSON = ["model": "m", "max_tokens": 10, "messages": [["role": "user", "content": "hello"]]]
            let headers: HTTPHeaders = ["authorization": "Bearer key-a"]
            _ = try await Self.ask(gateway)
            #expect(try await gateway.send(.POST, "/v1/messages", body: body, headers: headers).headers.first(name: "x-sluice-cache") == "miss")
            #expect(try await gateway.send(.POST, "/v1/messages", body: body, headers: headers).headers.first(name: "x-sluice-cache") == "hit")
            #expect(gateway.calls.count == 2)
        }
    }

    /// Sends until the answer is a hit (an answer is stored just after it is sent).
    static func untilHit(_ send: () async throws -> TestResponse) async throws -> TestResponse {
        for _ in 0..<50 {
            let response = try await send()
            if response.headers.first(name: "x-sluice-cache") == "hit" { return response }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await send()
    }
}
