import Kernel
import KernelTesting
import NIOHTTP1
import Testing
@testable import Plugins

/// Sources/Plugins/Redis (`RedisClient`, used by rate-limit and cache for state shared between
/// replicas) as far as it goes without a Redis server: the `redis_url` it is given, and what the
/// plugins do when Redis cannot be reached. Talking to a real redis-server (Lua scripts,
/// NOSCRIPT after a restart, shared buckets and entries) is left to
/// Tests/Integration/test_rate_limit.py and test_cache.py, which start one.
@Suite struct RedisTests {
    /// Nothing listens on 127.0.0.1:9 (discard) in a test environment: connecting is refused at once.
    static let deadRedis = "redis://127.0.0.1:9/0"

    @Test func readsItsURL() throws {
        let full = try #require(RedisEndpoint(url: "redis://:s3cret@cache.internal:6380/2"))
        #expect(full.host == "cache.internal")
        #expect(full.port == 6380)
        #expect(full.password == "s3cret")
        #expect(full.database == 2)
        #expect(!full.description.contains("s3cret"))
        let plain = try #require(RedisEndpoint(url: "redis://127.0.0.1"))
        #expect(plain.port == 6379)
        #expect(plain.database == 0)
        #expect(plain.password == nil)
        for bad in ["http://127.0.0.1:6379", "redis://", "redis://host/db", "127.0.0.1:6379"] {
            #expect(RedisEndpoint(url: bad) == nil, "\(bad)")
        }
    }

    @Test func aBadURLIsAManifestError() async {
        for plugin in ["rate-limit", "cache"] {
            let config = plugin == "rate-limit" ? #"{"requests_per_minute": 5, "redis_url": "http://127.0.0.1:6379"}"# : #"{"redis_url": "redis://host/db"}"#
            let errors = await manifestErrors(scriptedManifest(pipeline: #"[{"plugin": "\#(plugin)", "config": \#(config)}, {"plugin": "router"}]"#))
            #expect(errors.map(\.path) == ["pipeline[0].config.redis_url"], "\(plugin)")
            #expect(errors.first?.message == "expected redis://[:password@]host[:port][/db]")
        }
    }

    @Test func rateLimitsWithoutRedisFollowOnStoreError() async throws {
        let pipeline = { (onError: String) in
            #"[{"plugin": "rate-limit", "config": {"requests_per_minute": 1, "redis_url": "\#(Self.deadRedis)", "on_store_error": "\#(onError)"}}, {"plugin": "router"}]"#
        }
        try await withGateway(scriptedManifest(pipeline: pipeline("allow"))) { gateway async throws in
            for _ in 0..<2 {
                let answer = try await gateway.chat(model: "m", "hi")
                #expect(answer.status == .ok)
                #expect(answer.headers.first(name: "x-ratelimit-limit-requests") == nil)
            }
        }
        try await withGateway(scriptedManifest(pipeline: pipeline("deny"))) { gateway async throws in
            let refused = try await gateway.chat(model: "m", "hi")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.error?["code"]?.string == "rate_limit_store_unavailable")
            #expect(gateway.calls.isEmpty)
        }
    }

    @Test func aCacheWithoutRedisOnlyMisses() async throws {
        let pipeline = #"[{"plugin": "cache", "config": {"mode": "all", "redis_url": "\#(Self.deadRedis)"}}, {"plugin": "router"}]"#
        try await withGateway(scriptedManifest(pipeline: pipeline)) { gateway async throws in
            for _ in 0..<2 {
                let answer = try await gateway.chat(model: "m", "hi")
                #expect(answer.status == .ok)
                #expect(answer.text == "hello from the script")
                #expect(answer.headers.first(name: "x-sluice-cache") == "miss")
            }
            #expect(gateway.calls.count == 2)
        }
    }
}
