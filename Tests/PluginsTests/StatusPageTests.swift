import Foundation
import Kernel
import KernelTesting
import NIOHTTP1
@testable import Plugins
import Testing

/// `status-page` (Sources/Plugins/StatusPage): its histogram and ring of 10-second buckets on
/// their own, the figures of `/status.json` from known buckets, and the page through an
/// in-process gateway. The ring is shared by the process, so each gateway test names its models
/// and keys uniquely.
@Suite struct StatusPageTests {
    // MARK: The histogram

    @Test func quantilesInterpolateWithinABucket() throws {
        var histogram = LatencyHistogram()
        #expect(histogram.quantile(0.5) == nil)
        // 10 requests between 10 and 25 ms, 10 between 50 and 100 ms.
        for _ in 0..<10 { histogram.record(0.02) }
        for _ in 0..<10 { histogram.record(0.07) }
        #expect(histogram.total == 20)
        // The median is the 10th of 20: the top of the 10–25 ms bucket.
        #expect(abs(try #require(histogram.quantile(0.5)) - 0.025) < 1e-9)
        // p99 is 19.8 of 20: 9.8 of the 10 in 50–100 ms.
        #expect(abs(try #require(histogram.quantile(0.99)) - (0.05 + 0.05 * 0.98)) < 1e-9)
        // Exactly on a bound counts in that bound's bucket (Prometheus' `le`).
        var edge = LatencyHistogram()
        edge.record(0.005)
        #expect(try #require(edge.quantile(1)) <= 0.005)
        // Past the last bound: the last bound, as histogram_quantile answers.
        var slow = LatencyHistogram()
        slow.record(1000)
        #expect(slow.quantile(0.5) == 300)
        var merged = histogram
        merged.add(slow)
        #expect(merged.total == 21)
        #expect(MemoryLayout<LatencyHistogram>.size == 64)
    }

    // MARK: The ring

    static func observation(_ model: String = "m", key: String = "k", failed: Bool = false, seconds: Double = 0.02,
                            ttft: Double? = nil, tokens: (Int, Int) = (0, 0), spend: Double = 0) -> RequestObservation {
        RequestObservation(model: model, key: key, failed: failed, seconds: seconds, timeToFirstToken: ttft,
                           inputTokens: tokens.0, outputTokens: tokens.1, spend: spend)
    }

    @Test func ringKeepsTheLastHourInTenSecondBuckets() {
        let ring = StatusRing()
        let start = 1_800_000_000.0  // a multiple of 10
        ring.record(Self.observation(), at: start)
        ring.record(Self.observation(), at: start + 9.9)
        ring.record(Self.observation(failed: true), at: start + 10)

        let buckets = ring.buckets(endingAt: start + 15)
        #expect(buckets.count == 360)
        #expect(buckets.last?.number == Int(start) / 10 + 1)
        #expect(buckets.map(\.number) == Array((Int(start) / 10 - 358)...(Int(start) / 10 + 1)))
        #expect(buckets[358].models["m"]?.requests == 2)
        #expect(buckets[359].models["m"]?.requests == 1)
        #expect(buckets[359].models["m"]?.errors == 1)
        #expect(buckets.dropLast(2).allSatisfy { $0.models.isEmpty })

        // An hour later the same slots serve new spans: the old counts are gone.
        let later = start + 3600
        ring.record(Self.observation(), at: later)
        let after = ring.buckets(endingAt: later)
        #expect(after.last?.models["m"]?.requests == 1)
        #expect(after.allSatisfy { $0.number > Int(start) / 10 || $0.models.isEmpty })
        // A request for a span whose slot was already reused is dropped, not mixed in.
        ring.record(Self.observation(), at: start)
        #expect(ring.buckets(endingAt: later).last?.models["m"]?.requests == 1)
    }

    @Test func keysPastTheLimitAreCountedTogether() {
        var bucket = StatusBucket(number: 1)
        for index in 0..<(StatusBucket.maxKeys + 5) { bucket.record(Self.observation(key: "key-\(index)", spend: 1)) }
        bucket.record(Self.observation(key: "key-0", spend: 1))
        #expect(bucket.keys.count == StatusBucket.maxKeys + 1)
        #expect(bucket.keys["other"]?.requests == 5)
        #expect(bucket.keys["key-0"]?.requests == 2)
        #expect(bucket.models["m"]?.requests == StatusBucket.maxKeys + 6)
    }

    // MARK: The figures

    @Test func figuresOverFiveFifteenAndSixtyMinutes() throws {
        let ring = StatusRing()
        let now = 1_800_000_005.0  // half-way into a bucket
        // Now: 3 requests (one failed, one streamed), 40 minutes ago: 1; 10 minutes ago: 2.
        ring.record(Self.observation(key: "a", seconds: 0.02, tokens: (10, 20), spend: 0.5), at: now - 1)
        ring.record(Self.observation(key: "a", failed: true, seconds: 0.07), at: now - 2)
        ring.record(Self.observation(key: "b", seconds: 0.2, ttft: 0.04, tokens: (5, 5), spend: 1.5), at: now - 3)
        ring.record(Self.observation(key: "b", seconds: 1), at: now - 600)
        ring.record(Self.observation(key: "b", seconds: 1), at: now - 601)
        ring.record(Self.observation("x", key: "c", seconds: 1), at: now - 2400)

        let report = StatusReport.figures(buckets: ring.buckets(endingAt: now), models: ["m", "idle"])
        #expect(report["bucket_seconds"]?.int == 10)
        #expect(report["series_start"]?.int == (Int(now) / 10 - 359) * 10)
        let models = report["models"]?.elements ?? []
        // The manifest's models in its order, then others seen in the hour.
        #expect(models.map { $0["name"]?.string } == ["m", "idle", "x"])
        let m = models[0]
        let five = try #require(m["windows"]?["5m"]), fifteen = try #require(m["windows"]?["15m"]), hour = try #require(m["windows"]?["60m"])
        #expect(five["requests"]?.int == 3)
        #expect(five["errors"]?.int == 1)
        #expect(five["request_rate"]?.double == 0.01)  // 3 in 300 s
        #expect(five["error_rate"]?.double == 0.3333)
        #expect(five["tokens_per_minute"]?.double == 8)  // 40 tokens in 5 minutes
        #expect(five["input_tokens"]?.int == 15)
        #expect(five["spend_usd"]?.double == 2)
        #expect(five["ttft_p50_ms"]?.double == 37.5)  // the one stream: half-way into 25–50 ms
        #expect(try #require(five["p50_ms"]?.double) > 25 && (five["p50_ms"]?.double ?? 0) <= 100)
        #expect(fifteen["requests"]?.int == 5)
        #expect(hour["requests"]?.int == 5)
        #expect(models[2]["windows"]?["60m"]?["requests"]?.int == 1)
        // A model without requests: zero counts, and no quantile at all rather than a made-up one.
        let idle = try #require(models[1]["windows"]?["60m"])
        #expect(idle["requests"]?.int == 0)
        #expect(idle["p50_ms"]?.isNull == true)
        #expect(idle["error_rate"]?.isNull == true)

        // 360 points of 10 s per charted figure; the last one holds the newest bucket.
        let series = try #require(m["series"])
        for name in StatusReport.Figures.charted { #expect(series[name]?.count == 360) }
        #expect(series["request_rate"]?[359]?.double == 0.3)
        #expect(series["spend_usd"]?[359]?.double == 2)
        #expect(series["p50_ms"]?[0]?.isNull == true)
        #expect(series["request_rate"]?[299]?.double == 0.2)  // 10 minutes ago, 60 buckets back

        let byRequests = report["top_keys"]?["by_requests"]?.elements.map { $0["name"]?.string } ?? []
        #expect(byRequests == ["b", "a", "c"])
        let bySpend = report["top_keys"]?["by_spend"]?.elements ?? []
        #expect(bySpend.map { $0["name"]?.string } == ["b", "a"])
        #expect(bySpend.first?["spend_usd"]?.double == 1.5)
    }

    @Test func providersShowProbesAndBreakers() throws {
        let board = ProviderBoard(providers: ["a", "b"], unavailable: ["c": "no api key"])
        func states() -> [String: String] {
            Dictionary(uniqueKeysWithValues: board.json.elements.map { ($0["name"]?.string ?? "", $0["state"]?.string ?? "") })
        }
        #expect(states() == ["a": "unknown", "b": "unknown", "c": "down"])
        board.probed(ProviderProbed(provider: "a", isUp: true, detail: "200", checkedAt: Date(), latencyMilliseconds: 1.234))
        board.probed(ProviderProbed(provider: "b", isUp: false, detail: "connection refused", checkedAt: Date(), latencyMilliseconds: 2))
        #expect(states() == ["a": "ok", "b": "down", "c": "down"])
        board.circuit(provider: "a", model: "gpt", isOpen: true)
        let a = try #require(board.json.elements.first)
        #expect(a["state"]?.string == "down")
        #expect(a["breaker"]?.string == "open")
        #expect(a["open_targets"]?.elements.map(\.string) == ["gpt"])
        #expect(a["probe"]?["latency_ms"]?.double == 1.2)
        board.circuit(provider: "a", model: "gpt", isOpen: false)
        #expect(states()["a"] == "ok")
    }

    @Test func errorMessagesLoseAnythingShapedLikeAKey() {
        let known = KnownCredentials([KeyDigest(of: "short-key")])
        let message = RecentErrors.scrubbed("Incorrect API key provided: sk-proj-abcdefghij0123456789xyz. Or short-key here", credentials: known)
        #expect(message == "Incorrect API key provided: [redacted] Or [redacted] here")
        let long = RecentErrors.scrubbed(String(repeating: "word ", count: 200), credentials: .none)
        #expect(long.count <= RecentErrors.maxMessageCharacters + 1)
    }

    // MARK: Through the gateway

    struct Names {
        let id = UUID().uuidString.prefix(8).lowercased()
        var model: String { "s-\(id)" }
        var broken: String { "b-\(id)" }
        var key: String { "k-\(id)" }
        var secret: String { "client-secret-\(id)" }
        var admin: String { "admin-secret-\(id)" }
    }

    static func manifest(_ names: Names, status: String = "{}", server: String? = nil) -> String {
        """
        {"server": \(server ?? #"{"admin_keys": [{"name": "ops", "key": "\#(names.admin)"}]}"#),
         "providers": {"p": {"plugin": "scripted", "config": {"reply": "one two three", "input_tokens": 5}},
                       "broken": {"plugin": "scripted", "config": {"fail_status": 502}}},
         "models": {"\(names.model)": {"targets": [{"provider": "p", "model": "up"}], "price": {"input_per_million": 2, "output_per_million": 4}},
                    "\(names.broken)": {"targets": [{"provider": "broken", "model": "up-broken"}]}},
         "pipeline": [{"plugin": "status-page", "config": \(status)},
                      {"plugin": "api-key-auth", "config": {"keys": [{"name": "\(names.key)", "key": "\(names.secret)", "models": ["*"]}]}},
                      {"plugin": "router", "config": {"retries": 0}}]}
        """
    }

    @Test func servesFiguresOfTheRequestsItSaw() async throws {
        let names = Names()
        try await withGateway(Self.manifest(names)) { gateway async throws in
            let auth: HTTPHeaders = ["authorization": "Bearer \(names.secret)"]
            for stream in [false, true] { #expect(try await gateway.chat(model: names.model, "hi", stream: stream, headers: auth).status == .ok) }
            #expect(try await gateway.chat(model: names.broken, "hi", headers: auth).status == .badGateway)

            let answer = try await gateway.send(.GET, "/status.json", headers: ["authorization": "Bearer \(names.admin)"])
            #expect(answer.status == .ok)
            #expect(answer.headers.first(name: "cache-control") == "no-store")
            let report = try #require(answer.body)
            let models = report["models"]?.elements ?? []
            let model = try #require(models.first { $0["name"]?.string == names.model })
            let five = try #require(model["windows"]?["5m"])
            #expect(five["requests"]?.int == 2)
            #expect(five["errors"]?.int == 0)
            #expect(five["input_tokens"]?.int == 10)
            #expect(five["output_tokens"]?.int == 6)
            #expect(abs((five["spend_usd"]?.double ?? 0) - 2 * 22e-6) < 1e-12)
            #expect(five["ttft_p50_ms"]?.isNull == false)  // the stream
            let broken = try #require(models.first { $0["name"]?.string == names.broken })
            #expect(broken["windows"]?["5m"]?["errors"]?.int == 1)
            #expect(broken["windows"]?["5m"]?["error_rate"]?.double == 1)

            let error = try #require(report["recent_errors"]?.elements.first { $0["model"]?.string == names.broken })
            #expect(error["status"]?.int == 502)
            #expect(error["provider"]?.string == "none" || error["provider"]?.string == "broken")
            #expect(report["top_keys"]?["by_requests"]?.elements.contains { $0["name"]?.string == names.key } == true)
            #expect(report["generation"]?["number"]?.int ?? 0 >= 1)
            #expect(report["providers"]?.elements.map { $0["name"]?.string } == ["p", "broken"])
            #expect(report["open_streams"]?.int != nil)
            // Keys are named, never shown.
            let text = report.description
            #expect(!text.contains(names.secret) && !text.contains(names.admin))
        }
    }

    @Test func needsAnAdminKeyUnlessPublic() async throws {
        let names = Names()
        try await withGateway(Self.manifest(names)) { gateway async throws in
            for path in ["/status", "/status.json"] {
                let anonymous = try await gateway.send(.GET, path)
                #expect(anonymous.status == .unauthorized)
                #expect(anonymous.headers.first(name: "www-authenticate")?.hasPrefix("Basic") == true)
                #expect(try await gateway.send(.GET, path, headers: ["authorization": "Bearer \(names.secret)"]).status == .unauthorized)
                #expect(try await gateway.send(.GET, path, headers: ["authorization": "Bearer \(names.admin)"]).status == .ok)
                let basic = Data("anyone:\(names.admin)".utf8).base64EncodedString()
                #expect(try await gateway.send(.GET, path, headers: ["authorization": "Basic \(basic)"]).status == .ok)
            }
        }
        // Its own keys, without server.admin_keys.
        try await withGateway(Self.manifest(names, status: #"{"admin_keys": [{"name": "viewer", "key": "viewer-\#(names.id)"}]}"#, server: "{}")) { gateway async throws in
            #expect(try await gateway.send(.GET, "/status").status == .unauthorized)
            #expect(try await gateway.send(.GET, "/status", headers: ["authorization": "Bearer viewer-\(names.id)"]).status == .ok)
        }
        try await withGateway(Self.manifest(names, status: #"{"public": true, "path": "/ops"}"#)) { gateway async throws in
            #expect(try await gateway.send(.GET, "/ops").status == .ok)
            #expect(try await gateway.send(.GET, "/ops.json").status == .ok)
        }
        // No key anywhere and not public: refused at load, rather than an open page.
        let errors = await manifestErrors(Self.manifest(names, server: "{}"))
        #expect(errors.contains { $0.path == "pipeline[0].config" && $0.message.contains("public") })
    }

    @Test func thePageIsSelfContainedUnderAStrictPolicy() async throws {
        let names = Names()
        try await withGateway(Self.manifest(names, status: #"{"public": true, "refresh_s": 3}"#)) { gateway async throws in
            let answer = try await gateway.send(.GET, "/status")
            #expect(answer.status == .ok)
            #expect(answer.headers.first(name: "content-type") == "text/html; charset=utf-8")
            let policy = try #require(answer.headers.first(name: "content-security-policy"))
            #expect(policy.hasPrefix("default-src 'none'; script-src 'sha256-"))
            #expect(!policy.contains("unsafe"))
            let html = try #require(answer.bodyText)
            #expect(html.contains(#"data-source="/status.json" data-refresh-ms="3000""#))
            // The one URL in it is the SVG namespace; nothing is fetched from anywhere else.
            let urls = html.components(separatedBy: "http").dropFirst().map { String($0.prefix(30)) }
            #expect(urls.allSatisfy { $0.hasPrefix("://www.w3.org/2000/svg") })
            #expect(!html.contains("src=") && !html.contains("onclick") && !html.contains("style=\""))
        }
    }
}
