import Kernel
import NIOCore

/// Records every request in Prometheus metrics and serves them at `GET /metrics`. Put it early
/// in the pipeline (after access-log) so that refused requests are counted too.
public struct MetricsPlugin: Middleware {
    public static let name = "metrics"
    public static let summary = "Prometheus metrics at GET /metrics (OpenTelemetry GenAI names)"

    public struct Settings: PluginSettings {
        @Setting("path", "where the metrics are served") public var path = "/metrics"
        public init() {}
    }

    let path: String
    let metrics = GatewayMetrics.shared
    /// Model names clients may not invent: any other is counted as "unknown" (bounded label values).
    let knownModels: Set<String>

    public init(settings: Settings, context: PluginContext) throws {
        path = settings.path
        knownModels = Set(context.manifest.models.map(\.name))
        guard path.hasPrefix("/") else { throw context.configError("path", "expected a path starting with /") }
        let metrics = metrics
        context.signals.listen(for: CircuitChanged.self) { metrics.circuitOpen(provider: $0.provider, model: $0.model).set(to: $0.isOpen ? 1.0 : 0.0) }
        context.signals.listen(for: CacheEvicted.self) { metrics.cacheEvictions.increment(by: Int64($0.answers)) }
        context.signals.listen(for: CacheResized.self) { metrics.cacheBytes.set(Double($0.bytes)) }
        context.signals.listen(for: GuardrailTriggered.self) {
            metrics.guardrailActions(guardrail: $0.guardrail, rule: $0.rule, action: $0.action, stage: $0.stage.rawValue).increment(by: Int64($0.count))
        }
        context.signals.listen(for: LedgerWriteFailed.self) { metrics.ledgerWriteFailures.increment(by: Int64($0.batches)) }
        context.signals.listen(for: RateLimitStoreFailed.self) { metrics.rateLimitStoreErrors(action: $0.allowed ? "allowed" : "refused").increment() }
        // Series that alerts and dashboards watch exist from the start, at zero, so that "no
        // failures yet" and "not scraped" look different: every target's breaker and the
        // rate-limit store's failures.
        for model in context.manifest.models {
            for target in model.targets { metrics.circuitOpen(provider: target.provider, model: target.model).set(to: 0.0) }
        }
        for action in ["allowed", "refused"] { _ = metrics.rateLimitStoreErrors(action: action) }
    }

    public var routes: [PluginRoute] {
        [PluginRoute(method: "GET", path: path) { [metrics] _ in
            var bytes: [UInt8] = []
            metrics.registry.emit(into: &bytes)
            return GatewayResponse(headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"], body: .whole(ByteBuffer(bytes: bytes)))
        }]
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation != .listModels, request.operation != .other else { return try await next(request) }
        // The work after the wait is in synchronous functions: this frame lives as long as the
        // request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        metrics.inFlight.increment()
        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            failed(error, request)
            throw error
        }
        return finish(response, request)
    }

    @inline(never)
    private func failed(_ error: any Error, _ request: GatewayRequest) {
        metrics.inFlight.decrement()
        let failure = GatewayError(error)
        record(request, status: failure.status.code, error: failure, firstEventAt: nil)
    }

    @inline(never)
    private func finish(_ response: GatewayResponse, _ request: GatewayRequest) -> GatewayResponse {
        switch response.body {
        case .whole:
            metrics.inFlight.decrement()
            record(request, status: response.status.code, error: nil, firstEventAt: nil)
            return response
        case .events(let events):
            metrics.openStreams.increment()
            let status = response.status.code, first = FirstEventClock(), metrics = metrics, request = request.withoutBodyOrHeaders
            var streamed = response
            streamed.body = .events(events.observing({ _ in first.mark() }, finished: { error in
                metrics.openStreams.decrement()
                metrics.inFlight.decrement()
                record(request, status: status, error: error.map { GatewayError($0) }, firstEventAt: first.time, isStream: true)
            }))
            return streamed
        }
    }

    private func record(_ request: GatewayRequest, status: UInt, error: GatewayError?, firstEventAt: ContinuousClock.Instant?,
                        isStream: Bool = false) {
        let context = request.context, facts = context.facts, now = ContinuousClock.now
        if let mcp = facts.mcp { return recordMCP(mcp, context: context, status: status, error: error, now: now) }
        let model = knownModels.contains(request.model) ? request.model : "unknown"
        let provider = facts.provider ?? "none", key = context.identity?.name ?? "none"
        let series = metrics.requestSeries(model: model, provider: provider, status: status, key: key, frontDoor: request.dialect.rawValue)
        series.requests.increment()
        let total = now - context.receivedAt
        series.duration.record(total.inSeconds)
        if let firstEventAt { series.timeToFirstToken.record((firstEventAt - context.receivedAt).inSeconds) }
        if let upstream = facts.upstreamTime(now: now, streamed: isStream) {
            series.upstreamDuration.record(upstream.inSeconds)
            metrics.overhead.record(max(.zero, total - upstream).inSeconds)
        }
        if facts.attempts > 1 { series.retries.increment(by: Int64(facts.attempts - 1)) }
        if facts.usedFallback { series.fallbacks.increment() }
        if let usage = context.usage {
            series.inputTokenUsage.record(Double(usage.inputTokens))
            series.outputTokenUsage.record(Double(usage.outputTokens))
            series.inputTokens.increment(by: Int64(usage.inputTokens))
            series.outputTokens.increment(by: Int64(usage.outputTokens))
            if usage.cachedInputTokens > 0 { series.cachedInputTokens.increment(by: Int64(usage.cachedInputTokens)) }
        }
        if let cost = context.cost { series.cost.increment(by: cost) }
        if let cache = facts.cacheStatus { metrics.cacheRequests(result: cache).increment() }
        if let error, facts.attempts == 0, let reason = Self.refusalReason(error) {
            metrics.refused(reason: reason, key: key).increment()
        }
    }

    /// The MCP methods a label may name; a client's invented method counts as `other`.
    static let mcpMethods: Set<String> = [
        "initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list", "resources/read",
        "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "completion/complete", "logging/setLevel",
        "notifications/initialized", "notifications/cancelled", "notifications/roots/list_changed", "response", "GET", "DELETE",
    ]

    private func recordMCP(_ mcp: MCPCallFacts, context: RequestContext, status: UInt, error: GatewayError?, now: ContinuousClock.Instant) {
        let method = Self.mcpMethods.contains(mcp.method) ? mcp.method : "other"
        let tool = mcp.name == nil ? "" : mcp.isKnownName ? mcp.name! : "unknown"
        // Refused before the gateway answered (auth, rate limit): the status says why.
        let outcome = mcp.outcome ?? (error.flatMap(Self.refusalReason) ?? "error")
        let server = mcp.server ?? "none", key = context.identity?.name ?? "none"
        metrics.mcpCalls(server: server, method: method, tool: tool, outcome: outcome, key: key).increment()
        metrics.mcpDuration(server: server, method: method, tool: tool, outcome: outcome).record((now - context.receivedAt).inSeconds)
        if let error, let reason = Self.refusalReason(error) { metrics.refused(reason: reason, key: key).increment() }
    }

    /// Why a request was refused before any provider saw it.
    static func refusalReason(_ error: GatewayError) -> String? {
        switch (error.status.code, error.code) {
        case (429, "rate_limit_exceeded"): "rate_limited"
        case (400, _), (413, _): "invalid"
        case (401, _): "unauthorized"
        case (403, _): "forbidden"
        default: nil
        }
    }
}
