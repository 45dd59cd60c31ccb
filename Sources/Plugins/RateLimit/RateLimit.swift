import Kernel
import NIOHTTP1

/// Limits requests and tokens per minute (and tokens per day) for each key, each public model,
/// or the whole gateway. A request reserves one request and an estimate of its tokens up front;
/// when its answer (or stream) ends the reservation is settled with the usage the provider
/// reported. With `redis_url` the buckets are shared by every replica.
public struct RateLimit: Middleware {
    public static let name = "rate-limit"
    public static let summary = "requests and tokens per minute (and tokens per day), in memory or shared through Redis"

    public struct Settings: PluginSettings {
        @Setting("by", .choice(["key", "model", "global"]), "whose budget a request spends: its key, its public model, or one for all")
        public var by = "key"
        @Setting("requests_per_minute", .positiveInteger, "requests allowed per minute") public var requestsPerMinute: Int?
        @Setting("tokens_per_minute", .positiveInteger, "input + output tokens allowed per minute") public var tokensPerMinute: Int?
        @Setting("tokens_per_day", .positiveInteger, "input + output tokens allowed per day") public var tokensPerDay: Int?
        @Setting("tool_calls_per_minute", .positiveInteger, "MCP tools/call requests allowed per minute (other MCP methods are not counted)")
        public var toolCallsPerMinute: Int?
        @Setting("redis_url", "redis://[:password@]host:port/db to share limits between replicas; absent: in this process")
        public var redisURL: String?
        @Setting("on_store_error", .choice(["allow", "deny"]), "when Redis fails: let requests through (logged) or answer 503")
        public var onStoreError = "allow"
        @Setting("estimated_output_tokens", .nonNegativeInteger, "tokens reserved for the answer of a request that sets no max_tokens")
        public var estimatedOutputTokens = 256
        @Setting("key_prefix", "prefix of the Redis keys") public var keyPrefix = "sluice:rl:"
        public init() {}
    }

    let by: String
    let requestsPerMinute: Int?
    let tokensPerMinute: Int?
    let tokensPerDay: Int?
    let toolCallsPerMinute: Int?
    let store: any BucketStore
    let failOpen: Bool
    let estimatedOutput: Int
    let prefix: String
    /// Where settles run: after the answer, so that the store's round trip never delays it.
    let background: BackgroundWork
    let signals: PluginSignals

    public init(settings: Settings, context: PluginContext) throws {
        by = settings.by
        background = context.background
        requestsPerMinute = settings.requestsPerMinute
        tokensPerMinute = settings.tokensPerMinute
        tokensPerDay = settings.tokensPerDay
        toolCallsPerMinute = settings.toolCallsPerMinute
        guard requestsPerMinute != nil || tokensPerMinute != nil || tokensPerDay != nil || toolCallsPerMinute != nil else {
            throw context.configError(nil, "set at least one of requests_per_minute, tokens_per_minute, tokens_per_day, tool_calls_per_minute")
        }
        if let url = settings.redisURL {
            guard let endpoint = RedisEndpoint(url: url) else {
                throw context.configError("redis_url", "expected redis://[:password@]host[:port][/db]")
            }
            store = RedisBucketStore(redis: RedisClient(endpoint))
        } else {
            store = InMemoryBucketStore()
        }
        failOpen = settings.onStoreError != "deny"
        estimatedOutput = settings.estimatedOutputTokens
        prefix = settings.keyPrefix
        signals = context.signals
    }

    public func shutdown() async { await store.shutdown() }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation != .listModels, request.operation != .other else { return try await next(request) }
        if request.operation == .mcp { return try await limitToolCall(request, next: next) }
        // The work between the waits is in synchronous functions: this frame lives as long as the
        // request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let check = try limits(for: request)
        let reservation: Reservation
        do {
            reservation = try await store.reserve(check.limits.map(\.bucket), costs: check.limits.map(\.cost))
        } catch {
            try storeFailed(error, request)
            return try await next(request)
        }
        let admission = try admit(check, reservation)
        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            admission.settle(request.context.usage)
            throw error
        }
        return admission.finish(response, context: request.context)
    }

    /// The limits a request is counted against, and what it is estimated to cost.
    private struct Check {
        var subject: String
        var estimate: Double
        var limits: [Limit]
    }

    @inline(never)
    private func limits(for request: GatewayRequest) throws -> Check {
        let subject = switch by {
        case "model": "model:\(request.model)"
        case "global": "global"
        default: "key:\(request.context.identity?.name ?? "anonymous")"
        }
        // Only token limits need the estimate, and it reads the whole body.
        let estimate = tokensPerMinute == nil && tokensPerDay == nil ? 0
            : Double(Self.estimateTokens(request.body.view, operation: request.operation, outputEstimate: estimatedOutput))
        var limits: [Limit] = []
        limits.reserveCapacity(3)
        if let rpm = requestsPerMinute { limits.append(Limit(Bucket(key: "\(prefix)\(subject):rpm", capacity: Double(rpm), period: 60), cost: 1, .requests)) }
        if let tpm = tokensPerMinute { limits.append(Limit(Bucket(key: "\(prefix)\(subject):tpm", capacity: Double(tpm), period: 60), cost: estimate, .tokens)) }
        if let tpd = tokensPerDay { limits.append(Limit(Bucket(key: "\(prefix)\(subject):tpd", capacity: Double(tpd), period: 86_400), cost: estimate, .tokensPerDay)) }
        // A request that costs more than a whole bucket could never pass: waiting would not help.
        if let limit = limits.first(where: { $0.cost > $0.bucket.capacity }) {
            throw GatewayError(.tooManyRequests, type: "rate_limit_error",
                               "This request needs an estimated \(Int(limit.cost)) tokens, more than the limit of \(Int(limit.bucket.capacity)) for \(subject); ask for fewer (max_tokens) or send less.",
                               code: "request_over_limit")
        }
        return Check(subject: subject, estimate: estimate, limits: limits)
    }

    /// The store could not be asked: the request goes on (`on_store_error: allow`) or is refused.
    @inline(never)
    private func storeFailed(_ error: any Error, _ request: GatewayRequest) throws {
        request.context.logger.error("rate-limit store failed", metadata: ["error": .string(String(describing: error)),
                                                                          "on_store_error": .string(failOpen ? "allow" : "deny")])
        signals.send(RateLimitStoreFailed(allowed: failOpen))
        guard failOpen else {
            throw GatewayError(.serviceUnavailable, type: "server_error", "rate limits cannot be checked right now; retry shortly",
                               code: "rate_limit_store_unavailable")
        }
    }

    /// A request the reservation let through: the headers its answer carries, and the settling of
    /// its token estimate, exactly once: with the real usage, or refunded.
    private struct Admission {
        let headers: HTTPHeaders
        let settle: @Sendable (Usage?) -> Void
        let settlesTokens: Bool

        @inline(never)
        func finish(_ response: GatewayResponse, context: RequestContext) -> GatewayResponse {
            var response = response
            response.headers.add(contentsOf: headers)
            switch response.body {
            case .whole:
                settle(context.usage)
            case .events(let events):
                guard settlesTokens else { break }
                let settle = settle
                response.body = .events(events.observing({ _ in }, finished: { _ in settle(context.usage) }))
            }
            return response
        }
    }

    @inline(never)
    private func admit(_ check: Check, _ reservation: Reservation) throws -> Admission {
        let limits = check.limits
        let headers = Self.headers(limits: limits, reservation: reservation)
        guard reservation.allowed else {
            // A wait is never longer than refilling the largest bucket from empty.
            let longest = limits.map(\.bucket.period).max() ?? 60
            let seconds = max(1, Int(min(reservation.retryAfter.isNaN ? longest : reservation.retryAfter, longest).rounded(.up)))
            var refusal = GatewayError(.tooManyRequests, type: "rate_limit_error",
                                       "Rate limit reached for \(check.subject); retry in \(seconds) s.", code: "rate_limit_exceeded", headers: headers)
            refusal.headers.replaceOrAdd(name: "retry-after", value: String(seconds))
            throw refusal
        }
        let tokenBuckets = limits.compactMap { $0.kind == .requests ? nil : $0.bucket }
        let estimate = check.estimate
        let settle: @Sendable (Usage?) -> Void = { [store, background] usage in
            guard !tokenBuckets.isEmpty else { return }
            let used = usage.map { Double($0.totalTokens) } ?? 0
            store.settle(tokenBuckets, deltas: tokenBuckets.map { _ in estimate - used }, background: background)
        }
        return Admission(headers: headers, settle: settle, settlesTokens: !tokenBuckets.isEmpty)
    }

    /// An MCP tool call spends one from `tool_calls_per_minute` (the other MCP methods, listing and
    /// reading, are free); `by: "model"` counts per tool.
    private func limitToolCall(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard let (bucket, subject) = toolCallBucket(request) else { return try await next(request) }
        let reservation: Reservation
        do {
            reservation = try await store.reserve([bucket], costs: [1])
        } catch {
            try storeFailed(error, request)
            return try await next(request)
        }
        try Self.admitToolCall(reservation, subject: subject)
        return try await next(request)
    }

    /// The bucket a tool call spends from, and what it counts; nil for MCP methods that are free.
    @inline(never)
    private func toolCallBucket(_ request: GatewayRequest) -> (Bucket, subject: String)? {
        guard let perMinute = toolCallsPerMinute, let mcp = request.context.facts.mcp, mcp.method == "tools/call" else { return nil }
        let subject = switch by {
        case "model": "tool:\(mcp.name ?? "")"
        case "global": "global"
        default: "key:\(request.context.identity?.name ?? "anonymous")"
        }
        return (Bucket(key: "\(prefix)\(subject):tcpm", capacity: Double(perMinute), period: 60), subject)
    }

    @inline(never)
    private static func admitToolCall(_ reservation: Reservation, subject: String) throws {
        guard !reservation.allowed else { return }
        let seconds = max(1, Int(min(reservation.retryAfter.isNaN ? 60 : reservation.retryAfter, 60).rounded(.up)))
        throw GatewayError(.tooManyRequests, type: "rate_limit_error", "Tool call limit reached for \(subject); retry in \(seconds) s.",
                           code: "rate_limit_exceeded", headers: ["retry-after": String(seconds)])
    }

    /// A request's tokens before it runs: about four characters a token for the prompt, plus the
    /// answer's cap (or the configured estimate).
    static func estimateTokens(_ body: JSONView, operation: APIOperation, outputEstimate: Int) -> Int {
        let members = body.members(estimateKeys)  // one walk over a body that may be long
        let characters = promptCharacters(messages: members[0], system: members[1], instructions: members[2], input: members[3])
        let output = members[4]?.int ?? members[5]?.int ?? members[6]?.int ?? (operation == .embeddings ? 0 : outputEstimate)
        // The front door keeps a request's numbers in range; bounding each part keeps the sum from
        // overflowing or going negative for a request built any other way.
        return Usage.bounded((characters + 3) / 4) + Usage.bounded(output)
    }

    private static let promptKeys = ["messages", "system", "instructions", "input"]
    private static let estimateKeys = promptKeys + ["max_completion_tokens", "max_tokens", "max_output_tokens"]

    /// Characters of a request's prompt: messages, system, instructions and input (also `budget`'s estimate).
    static func promptCharacters(_ body: JSONView) -> Int {
        let members = body.members(promptKeys)
        return promptCharacters(messages: members[0], system: members[1], instructions: members[2], input: members[3])
    }

    private static func promptCharacters(messages: JSONView?, system: JSONView?, instructions: JSONView?, input: JSONView?) -> Int {
        var characters = messages?.elements.reduce(0) { $0 + ($1["content"]?.textCharacterCount ?? 0) } ?? 0
        characters += system?.textCharacterCount ?? 0
        characters += instructions?.stringScalarCount ?? 0
        if let input { characters += input.stringScalarCount ?? input.elements.reduce(0) { $0 + inputCharacters($1) } }
        return characters
    }

    /// Characters of one `input` element: an embedding's string, or a Responses item's text
    /// (a message's content, a tool call's arguments or output).
    private static func inputCharacters(_ item: JSONView) -> Int {
        if let count = item.stringScalarCount { return count }
        return (item["content"]?.textCharacterCount ?? 0) + (item["arguments"]?.stringScalarCount ?? 0) + (item["output"]?.stringScalarCount ?? 0)
    }

    /// OpenAI's `x-ratelimit-*` headers for the requests and tokens limits.
    static func headers(limits: [Limit], reservation: Reservation) -> HTTPHeaders {
        // Built as a list: `HTTPHeaders.add` checks each name is ASCII, and these are literals.
        var headers: [(String, String)] = []
        headers.reserveCapacity(limits.count * 3)
        // The tokens trio shows the per-minute limit, or the daily one when that is the only one.
        let hasMinuteTokens = limits.contains { $0.kind == .tokens }
        for index in limits.indices where !(limits[index].kind == .tokensPerDay && hasMinuteTokens) {
            let limit = limits[index], remaining = reservation.remaining[index]
            let requests = limit.kind == .requests
            headers.append((requests ? "x-ratelimit-limit-requests" : "x-ratelimit-limit-tokens", String(decimal: Int(limit.bucket.capacity))))
            headers.append((requests ? "x-ratelimit-remaining-requests" : "x-ratelimit-remaining-tokens",
                            String(decimal: max(0, Int(remaining.rounded(.down))))))
            headers.append((requests ? "x-ratelimit-reset-requests" : "x-ratelimit-reset-tokens",
                            Self.duration(limit.bucket.secondsUntilFull(from: remaining))))
        }
        return HTTPHeaders(headers)
    }

    /// `20ms`, `1s`, `6m0s` — the spelling OpenAI uses in its reset headers.
    static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return String(decimal: Int((max(0, seconds) * 1000).rounded(.up))) + "ms" }
        let whole = Int(min(seconds, 86_400 * 366).rounded(.up))
        return whole < 60 ? String(decimal: whole) + "s" : String(decimal: whole / 60) + "m" + String(decimal: whole % 60) + "s"
    }
}
