import Foundation
import Kernel
import NIOHTTP1

/// Caps spend in US dollars per key, team and model over a calendar period (UTC), from the
/// manifest's `limits` and from managed keys' and teams' own budgets. A request reserves its
/// worst-case cost before it runs (its prompt estimated, its answer at `max_tokens` or
/// `default_max_output_tokens`, at the dearest price its model may be served at); when its answer
/// or stream ends the reservation is settled with the real cost. A request that would take a
/// budget past its cap is refused with 429 `insufficient_quota`. So concurrent requests can
/// overspend a budget only by what real usage exceeded their reservations.
///
/// Counters live in memory or, with `redis_url`, in Redis for replicas to share; with the
/// manifest's database they are rebuilt from the spend ledger when missing (a restart, an
/// emptied Redis). docs/ARCHITECTURE.md, "Where state lives".
public struct Budget: Middleware {
    public static let name = "budget"
    public static let summary = "spend caps in USD per key, team and model per day, week or month; shared through Redis, rebuilt from the ledger"

    public struct Settings: PluginSettings {
        @Setting("period", .choice(["day", "week", "month"]), "the calendar period (UTC) a budget covers; weeks start on Monday")
        public var period = "month"
        @Setting("limits", "caps from the manifest; managed keys and teams add their own budget_usd") public var limits: [Limit] = []
        @Setting("redis_url", "redis://[:password@]host:port/db to share counters between replicas; absent: in this process")
        public var redisURL: String?
        @Setting("on_store_error", .choice(["allow", "deny"]), "when the counters cannot be reached: let requests through (logged) or answer 503")
        public var onStoreError = "allow"
        @Setting("default_max_output_tokens", .positiveInteger, "output tokens reserved for a request that sets no max_tokens")
        public var defaultMaxOutputTokens = 4096
        @Setting("key_prefix", "prefix of the Redis keys") public var keyPrefix = "sluice:budget:"
        public init() {}
    }

    public struct Limit: PluginSettings {
        @Setting("key", "a key's name, or \"*\" for each key") public var key: String?
        @Setting("team", "a team's name, or \"*\" for each team") public var team: String?
        @Setting("model", "a public model, or \"*\" for each model") public var model: String?
        @Setting("usd", .number(min: 0), required: true, "the cap in US dollars per period") public var usd = 0.0
        public init() {}
    }

    /// One budget a request falls under.
    struct Scope: Sendable {
        var grouping: SpendLedger.Grouping
        var name: String
        var limitNano: Int64
        var label: String { "\(grouping.rawValue) `\(name)`" }
    }

    let period: BudgetPeriod
    let limits: [(grouping: SpendLedger.Grouping, name: String, nano: Int64)]
    let store: any BudgetStore
    let failOpen: Bool
    let defaultMaxOutput: Int
    let prefix: String
    let manifest: Manifest
    let ledger: SpendLedger?
    let directory: ManagedKeyDirectory?
    /// Where settles run once the answer is out.
    let background: BackgroundWork

    public init(settings: Settings, context: PluginContext) throws {
        period = BudgetPeriod(rawValue: settings.period) ?? .month
        var limits: [(grouping: SpendLedger.Grouping, name: String, nano: Int64)] = []
        for (index, limit) in settings.limits.enumerated() {
            let candidates: [(SpendLedger.Grouping, String?)] = [(.key, limit.key), (.team, limit.team), (.model, limit.model)]
            let named = candidates.filter { $0.1 != nil }
            guard named.count == 1, let grouping = named.first?.0, let name = named.first?.1 else {
                throw context.configError("limits[\(index)]", "name exactly one of \"key\", \"team\" or \"model\"")
            }
            limits.append((grouping, name, SpendLedger.nanoUSD(limit.usd)))
        }
        self.limits = limits
        if let url = settings.redisURL {
            guard let endpoint = RedisEndpoint(url: url) else { throw context.configError("redis_url", "expected redis://[:password@]host[:port][/db]") }
            store = RedisBudgetStore(redis: RedisClient(endpoint))
        } else {
            store = InMemoryBudgetStore()
        }
        failOpen = settings.onStoreError != "deny"
        defaultMaxOutput = settings.defaultMaxOutputTokens
        prefix = settings.keyPrefix
        manifest = context.manifest
        background = context.background
        ledger = context.database.map(SpendLedger.init(database:))
        directory = context.database.map { ManagedKeyDirectory(database: $0, background: context.background, logger: context.logger) }
        if context.database == nil {
            context.logger.warning("budget: the manifest names no database, so spend is not rebuilt after a restart and managed budgets are off",
                                   metadata: ["path": .string(context.configPath)])
        }
    }

    public func start() async throws { try await directory?.start() }

    public func shutdown() async {
        await directory?.stop()
        await store.shutdown()
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation != .listModels, request.operation != .other else { return try await next(request) }
        // The work between the waits is in synchronous functions: this frame lives as long as the
        // request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        guard let check = check(request) else { return try await next(request) }
        let reservation: BudgetReservation
        do {
            reservation = try await store.reserve(check.counters, amount: check.reserved)
        } catch {
            try storeFailed(error, request)
            return try await next(request)
        }
        let admission = try admit(check, reservation)
        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            admission.settle(request.context.cost)
            throw error
        }
        return admission.finish(response, context: request.context)
    }

    /// The budgets a request counts against in this period, and the most it may cost.
    private struct Check {
        var scopes: [Scope]
        var counters: [BudgetCounter]
        var reserved: Int64
        var now: Date
        var end: Date
    }

    /// Nil when no budget covers the request.
    @inline(never)
    private func check(_ request: GatewayRequest) -> Check? {
        let now = Date()
        let scopes = self.scopes(for: request)
        guard !scopes.isEmpty else { return nil }
        let (start, end) = period.bounds(at: now)
        let periodTag = String(Int64(start.timeIntervalSince1970))
        let ttl = Int(end.timeIntervalSince(now)) + 86_400
        let sinceMs = WallClock.milliseconds(start)
        let counters = scopes.map { scope in
            BudgetCounter(name: "\(prefix)\(scope.grouping.rawValue):\(scope.name):\(period.rawValue):\(periodTag)", limitNano: scope.limitNano,
                          ttlSeconds: ttl, seed: { [ledger] in try await ledger?.spent(by: scope.grouping, scope.name, sinceMs: sinceMs) ?? 0 })
        }
        return Check(scopes: scopes, counters: counters, reserved: worstCaseNano(request), now: now, end: end)
    }

    /// The store could not be asked: the request goes on (`on_store_error: allow`) or is refused.
    @inline(never)
    private func storeFailed(_ error: any Error, _ request: GatewayRequest) throws {
        request.context.logger.error("budget store failed", metadata: ["error": .string("\(error)"), "on_store_error": .string(failOpen ? "allow" : "deny")])
        guard failOpen else {
            throw GatewayError(.serviceUnavailable, type: "server_error", "budgets cannot be checked right now; retry shortly",
                               code: "budget_store_unavailable")
        }
    }

    /// A request its budgets let through: what is left of the tightest, and the settling of the
    /// reservation, exactly once, with the real cost (nothing when none is known).
    private struct Admission {
        let remaining: Double
        let settle: @Sendable (Double?) -> Void

        @inline(never)
        func finish(_ response: GatewayResponse, context: RequestContext) -> GatewayResponse {
            var response = response
            response.headers.replaceOrAdd(name: "x-sluice-budget-remaining-usd", value: Budget.dollars(max(0, remaining)))
            switch response.body {
            case .whole:
                settle(context.cost)
            case .events(let events):
                let settle = settle
                response.body = .events(events.observing({ _ in }, finished: { _ in settle(context.cost) }))
            }
            return response
        }
    }

    @inline(never)
    private func admit(_ check: Check, _ reservation: BudgetReservation) throws -> Admission {
        let scopes = check.scopes, reserved = check.reserved
        let resetSeconds = max(1, Int(check.end.timeIntervalSince(check.now).rounded(.up)))
        guard reservation.allowed else {
            let index = reservation.refusedBy ?? 0
            let scope = scopes[index]
            let spent = Double(reservation.spent[index]) / 1e9, cap = Double(scope.limitNano) / 1e9
            throw GatewayError(.tooManyRequests, type: "insufficient_quota",
                               "The \(period.adjective) budget of \(scope.label) is used up (spent $\(Self.dollars(spent)) of $\(Self.dollars(cap)); this request may cost up to $\(Self.dollars(Double(reserved) / 1e9))). It resets at \(ISO8601.string(ms: WallClock.milliseconds(check.end))).",
                               code: "insufficient_quota",
                               headers: ["retry-after": String(resetSeconds), "x-sluice-budget-remaining-usd": Self.dollars(max(0, cap - spent))])
        }
        let remaining = zip(scopes, reservation.spent).map { Double($0.limitNano - $1) / 1e9 }.min() ?? 0
        let store = store, background = background, counters = check.counters
        let settle: @Sendable (Double?) -> Void = { cost in
            let delta = SpendLedger.nanoUSD(cost ?? 0) - reserved
            guard delta != 0 else { return }
            // After the answer, so the caller does not wait for the store. Refused only once the
            // gateway has stopped: the counters then keep the reservation, which errs towards the cap.
            background.submit { try? await store.adjust(counters, delta: delta) }
        }
        return Admission(remaining: remaining, settle: settle)
    }

    /// The budgets a request falls under, the tightest cap per key, team or model.
    func scopes(for request: GatewayRequest) -> [Scope] {
        let identity = request.context.identity
        let names: [SpendLedger.Grouping: String?] = [.key: identity?.name, .team: identity?.team, .model: request.model.isEmpty ? nil : request.model]
        var caps: [String: Scope] = [:]
        func add(_ grouping: SpendLedger.Grouping, _ nano: Int64) {
            guard let name = names[grouping] ?? nil else { return }
            let id = "\(grouping.rawValue):\(name)"
            if let existing = caps[id], existing.limitNano <= nano { return }
            caps[id] = Scope(grouping: grouping, name: name, limitNano: nano)
        }
        for limit in limits where limit.name == "*" || limit.name == (names[limit.grouping] ?? nil) { add(limit.grouping, limit.nano) }
        if let directory {
            if let name = identity?.name, let budget = directory.key(named: name)?.budgetUSD { add(.key, SpendLedger.nanoUSD(budget)) }
            if let team = identity?.team, let budget = directory.team(named: team)?.budgetUSD { add(.team, SpendLedger.nanoUSD(budget)) }
        }
        return caps.values.sorted { ($0.grouping.rawValue, $0.name) < ($1.grouping.rawValue, $1.name) }
    }

    /// The most a request may cost: its prompt (about three characters a token, on the
    /// generous side) and its answer's cap, at the dearest price among its model's targets,
    /// the model's own price and its fallbacks'.
    func worstCaseNano(_ request: GatewayRequest) -> Int64 {
        let prices = Self.prices(of: request.model, in: manifest)
        guard !prices.isEmpty else { return 0 }
        let input = prices.map(\.input).max() ?? 0, output = prices.map(\.output).max() ?? 0
        let body = request.body.view
        let prompt = Usage.bounded((RateLimit.promptCharacters(body) + 2) / 3)
        let answer = request.operation == .embeddings ? 0
            : Usage.bounded(body["max_completion_tokens"]?.int ?? body["max_tokens"]?.int ?? body["max_output_tokens"]?.int ?? defaultMaxOutput)
        return SpendLedger.nanoUSD((Double(prompt) * input + Double(answer) * output) / 1_000_000)
    }

    static func prices(of model: String, in manifest: Manifest, seen: Set<String> = []) -> [Price] {
        guard !seen.contains(model), let route = manifest.model(named: model) else { return [] }
        var prices = route.targets.compactMap { $0.price ?? route.price }
        if let price = route.price { prices.append(price) }
        for fallback in route.fallbacks { prices += Self.prices(of: fallback, in: manifest, seen: seen.union([model])) }
        return prices
    }

    static func dollars(_ value: Double) -> String { String(format: "%.6f", value) }
}
