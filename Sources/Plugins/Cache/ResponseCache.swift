import Kernel
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Exact-match cache of successful answers, in memory or in Redis. The same request asked
/// again (streamed or not) is answered from the cache; identical requests in flight at once wait
/// for one upstream call. `cache-control: no-cache` skips the read, `no-store` the write; the
/// answer says `x-sluice-cache: hit | miss | bypass`. A store that fails only costs misses.
/// Responses API requests are not cached: each Response has an id of its own, by which a client
/// (and `response-store`) finds it again, so a replayed Response would be another client's.
public struct ResponseCache: Middleware {
    public static let name = "cache"
    public static let summary = "answers repeated requests from a cache (memory or Redis), coalescing identical ones"

    public struct Settings: PluginSettings {
        @Setting("ttl_s", .number(min: 0.001), "how long an answer is kept") public var ttl = 300.0
        @Setting("redis_url", "redis://[:password@]host:port/db to share the cache between replicas; absent: in this process")
        public var redisURL: String?
        @Setting("max_bytes", .positiveInteger, "size of the in-memory cache (least recently used answers go first)")
        public var maxBytes = 67_108_864
        @Setting("max_entry_bytes", .positiveInteger, "larger answers are not stored") public var maxEntryBytes = 1_048_576
        @Setting("models", "public models whose answers are cached; \"*\" for all") public var models = ["*"]
        @Setting("mode", .choice(["deterministic", "all"]), "deterministic: only requests with temperature 0 (and embeddings); all: every request")
        public var mode = "deterministic"
        @Setting("shared", "share entries between keys (default: each key has its own)") public var shared = false
        @Setting("coalesce", "identical requests in flight wait for one upstream call") public var coalesce = true
        @Setting("coalesce_timeout_s", .number(min: 0.001), "longest wait for an identical request in flight") public var coalesceTimeout = 30.0
        @Setting("charge_hits", "report a hit's usage (as cached input) to rate limits and costs; default: a hit is free")
        public var chargeHits = false
        @Setting("key_prefix", "prefix of the Redis keys") public var keyPrefix = "sluice:cache:"
        public init() {}
    }

    let store: any ExpiringStore
    let ttl: Duration
    let maxEntryBytes: Int
    let models: Set<String>?
    let cachesEverything: Bool
    let shared: Bool
    let coalescer: Coalescer?
    let coalesceTimeout: Duration
    let chargesHits: Bool
    let prefix: String
    /// Where answers are saved: after the reply is on its way, so that a slow store never delays it.
    let background: BackgroundWork

    public init(settings: Settings, context: PluginContext) throws {
        background = context.background
        if let url = settings.redisURL {
            guard let endpoint = RedisEndpoint(url: url) else { throw context.configError("redis_url", "expected redis://[:password@]host[:port][/db]") }
            store = RedisExpiringStore(redis: RedisClient(endpoint))
        } else {
            let signals = context.signals
            store = MemoryExpiringStore(maxBytes: settings.maxBytes,
                                     onEviction: { signals.send(CacheEvicted(answers: $0)) },
                                     onSize: { signals.send(CacheResized(bytes: $0)) })
        }
        ttl = .seconds(settings.ttl)
        maxEntryBytes = settings.maxEntryBytes
        models = settings.models.contains("*") ? nil : Set(settings.models)
        cachesEverything = settings.mode == "all"
        shared = settings.shared
        coalescer = settings.coalesce ? Coalescer() : nil
        coalesceTimeout = .seconds(settings.coalesceTimeout)
        chargesHits = settings.chargeHits
        prefix = settings.keyPrefix
    }

    public func shutdown() async { await store.shutdown() }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard [.chatCompletions, .embeddings, .messages].contains(request.operation) else { return try await next(request) }
        // The work around the waits is in synchronous functions: this frame lives as long as the
        // request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let (reads, writes) = Self.directives(request)
        guard isCacheable(request), reads || writes else { return try await bypass(request, next: next) }

        let key = key(for: request)
        if reads, let hit = await lookup(key, request) { return hit }
        var leads = false
        if reads, writes, let coalescer {
            switch await coalescer.join(key, timeout: coalesceTimeout) {
            case .leader:
                leads = true
            case .follower(let leaderSucceeded):
                if leaderSucceeded, let hit = await lookup(key, request) { return hit }
            }
        }
        let leader = leads ? coalescer : nil
        let finish: @Sendable (Bool) -> Void = { succeeded in leader?.finish(key, succeeded: succeeded) }

        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            finish(false)
            throw error
        }
        return stored(response, key: key, reads: reads, writes: writes, request: request, finish: finish)
    }

    /// The client's `cache-control`: whether the cache may answer (`no-cache` says no) and
    /// whether it may keep the answer (`no-store`).
    @inline(never)
    private static func directives(_ request: GatewayRequest) -> (reads: Bool, writes: Bool) {
        let control = Set((request.headers.first(name: "cache-control") ?? "").lowercased().split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) })
        return (!control.contains("no-cache"), !control.contains("no-store"))
    }

    @inline(never)
    private func key(for request: GatewayRequest) -> String {
        CacheKey.make(request, scope: shared ? "*" : (request.context.identity?.name ?? "anonymous"), prefix: prefix)
    }

    /// A miss's answer, kept when it may be (a stream's once it has ended).
    @inline(never)
    private func stored(_ response: GatewayResponse, key: String, reads: Bool, writes: Bool, request: GatewayRequest,
                        finish: @escaping @Sendable (Bool) -> Void) -> GatewayResponse {
        var response = response
        request.context.recordFacts { $0.cacheStatus = reads ? "miss" : "bypass" }
        response.headers.replaceOrAdd(name: "x-sluice-cache", value: reads ? "miss" : "bypass")
        guard writes, (200..<300).contains(response.status.code) else {
            finish(false)
            return response
        }
        switch response.body {
        case .whole(let body):
            guard body.readableBytes <= maxEntryBytes, let whole = try? JSON.parse(body) else {
                finish(false)
                return response
            }
            let answer = CachedAnswer(whole: whole, body: String(buffer: body), events: nil, usage: request.context.usage)
            saveInBackground(key, answer, request, finish: finish)
        case .events(let events):
            response.body = .events(recording(events, key: key, request: request, finish: finish))
        }
        return response
    }

    private func bypass(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        var response = try await next(request)
        request.context.recordFacts { $0.cacheStatus = "bypass" }
        response.headers.replaceOrAdd(name: "x-sluice-cache", value: "bypass")
        return response
    }

    private func isCacheable(_ request: GatewayRequest) -> Bool {
        if let models, !models.contains(request.model) { return false }
        if cachesEverything || request.operation == .embeddings { return true }
        return request.body.member("temperature")?.double == 0
    }

    private func lookup(_ key: String, _ request: GatewayRequest) async -> GatewayResponse? {
        let stored: [UInt8]?
        do {
            stored = try await store.get(key)
        } catch {
            request.context.logger.warning("cache store failed; treating as a miss", metadata: ["error": .string(String(describing: error))])
            return nil
        }
        guard let stored, let answer = CachedAnswer(decoding: stored) else { return nil }
        request.context.recordFacts { $0.cacheStatus = "hit" }
        if chargesHits, let usage = answer.usage {
            request.context.usage = Usage(inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, cachedInputTokens: usage.inputTokens)
        }
        var response = answer.response(streaming: request.stream, dialect: request.dialect,
                                       includeUsage: request.body.member("stream_options")?.json["include_usage"]?.bool == true,
                                       allocator: request.context.allocator)
        response.provider = "cache"
        response.headers.replaceOrAdd(name: "x-sluice-cache", value: "hit")
        return response
    }

    private func save(_ key: String, _ answer: CachedAnswer, _ request: GatewayRequest) async {
        let bytes = answer.encoded()
        guard bytes.count <= maxEntryBytes * 2 else { return }
        do {
            try await store.set(key, bytes, ttl: ttl)
        } catch {
            request.context.logger.warning("cache store failed; the answer is not cached", metadata: ["error": .string(String(describing: error))])
        }
    }

    /// Passes a stream through while keeping its events; a stream that completes is stored.
    private func recording(_ events: EventStream, key: String, request: GatewayRequest, finish: @escaping @Sendable (Bool) -> Void) -> EventStream {
        let recorder = StreamRecorder(limit: maxEntryBytes)
        let cache = self, request = request.withoutBodyOrHeaders
        return events.observing({ recorder.add($0) }, finished: { error in
            // A stream with an event that is not JSON is not an answer to replay to anyone.
            guard error == nil, let recorded = recorder.events, recorded.allSatisfy({ $0.isDone || $0.json != nil }),
                  var whole = StreamAssembler.whole(from: recorded, dialect: request.dialect) else {
                finish(false)
                return
            }
            // The provider hid the usage chunk from a client that did not ask for it; the usage is known all the same.
            if request.dialect == .openAI, whole["usage"] == nil, let usage = request.context.usage { whole["usage"] = usage.openAIJSON }
            let answer = CachedAnswer(whole: whole, events: recorded, usage: request.context.usage)
            cache.saveInBackground(key, answer, request, finish: finish)
        })
    }

    /// Saves an answer as a background job, then tells the requests waiting for it (coalesced
    /// followers) to look it up; when the gateway is stopping and the job is refused, they are
    /// told to go upstream themselves rather than left waiting.
    private func saveInBackground(_ key: String, _ answer: CachedAnswer, _ request: GatewayRequest, finish: @escaping @Sendable (Bool) -> Void) {
        let submitted = background.submit { [self] in
            await save(key, answer, request)
            finish(true)
        }
        if !submitted { finish(false) }
    }
}

/// The events of one stream, up to a size; past it nothing is kept (the answer is not stored).
final class StreamRecorder: Sendable {
    private let state: NIOLockedValueBox<(events: [SSEEvent], bytes: Int, overflowed: Bool)> = .init(([], 0, false))
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func add(_ event: SSEEvent) {
        state.withLockedValue { state in
            guard !state.overflowed else { return }
            state.bytes += event.data.utf8.count
            if state.bytes > limit {
                state.overflowed = true
                state.events = []
            } else {
                state.events.append(event)
            }
        }
    }

    var events: [SSEEvent]? { state.withLockedValue { $0.overflowed ? nil : $0.events } }
}

/// The in-memory cache dropped answers to make room.
public struct CacheEvicted: Sendable {
    public var answers: Int
}

/// The in-memory cache's size changed.
public struct CacheResized: Sendable {
    public var bytes: Int
}
