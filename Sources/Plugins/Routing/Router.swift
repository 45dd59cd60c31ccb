import Kernel
import NIOCore
import NIOHTTP1

/// The terminal stage: maps the public model to a provider target (smooth weighted round robin),
/// sends the request there, and on a retryable failure (connect errors, 429, 5xx) retries with
/// backoff — another target of the model first, then the model's fallbacks — within a per-attempt
/// timeout and an overall deadline. A circuit breaker per target skips providers that keep
/// failing. A stream is never retried once it has started. Also answers `GET /v1/models`.
public struct Router: Middleware {
    public static let name = "router"
    public static let summary = "sends each request to a provider target of its public model, with retries, fallbacks and circuit breaking"
    public static let isTerminal = true

    public struct Settings: PluginSettings {
        @Setting("retries", .nonNegativeInteger, "extra attempts after a retryable failure (connect errors, 429, 5xx)")
        public var retries = 2
        @Setting("timeout_s", .number(min: 0.001), "longest wait for one attempt (for streams: until the stream starts)")
        public var timeout = 600.0
        @Setting("deadline_s", .number(min: 0.001), "longest time for all attempts together")
        public var deadline = 600.0
        @Setting("backoff_ms", .number(min: 0), "base of the exponential backoff (with full jitter) before retrying a target")
        public var backoffMilliseconds = 100.0
        @Setting("max_retry_after_s", .number(min: 0), "a 429's retry-after up to this long is waited; a longer one moves on")
        public var maxRetryAfter = 30.0
        @Setting("breaker_failures", .positiveInteger, "consecutive failures that open a target's circuit")
        public var breakerFailures = 5
        @Setting("breaker_cooldown_s", .number(min: 0.001), "how long an open circuit skips its target before one trial request")
        public var breakerCooldown = 30.0
        public init() {}
    }

    /// Every public model, with its targets resolved (`Route`).
    let routes: [String: Route]
    let modelOrder: [String]
    let retries: Int
    let timeout: Duration
    let deadline: Duration
    let backoff: Duration
    let maxRetryAfter: Duration

    public init(settings: Settings, context: PluginContext) throws {
        let signals = context.signals, failures = settings.breakerFailures, cooldown = Duration.seconds(settings.breakerCooldown)
        routes = Route.all(context.manifest.models, providers: context.providers, unavailable: context.manifest.unavailableProviders) { provider, model in
            CircuitBreaker(failureThreshold: failures, cooldown: cooldown) { isOpen in
                signals.send(CircuitChanged(provider: provider, model: model, isOpen: isOpen))
            }
        }
        modelOrder = context.manifest.models.map(\.name)
        retries = settings.retries
        timeout = .seconds(settings.timeout)
        deadline = .seconds(settings.deadline)
        backoff = .milliseconds(settings.backoffMilliseconds)
        maxRetryAfter = .seconds(settings.maxRetryAfter)
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        if request.operation == .listModels { return listModels(for: request) }
        let plan = try plan(for: request)
        while try plan.next() {
            if plan.lastFailure != nil, !(try await wait(before: plan)) { break }
            guard let (provider, call) = plan.begin(request: request, timeout: timeout) else { break }
            do {
                return plan.answered(try await provider.answer(call), request: request)
            } catch {
                try plan.failed(error, request: request)
            }
        }
        throw plan.exhausted(model: request.model)
    }

    /// The attempts at the request's route (synchronous, and kept out of `handle`'s frame, as
    /// `AttemptPlan`'s steps are).
    @inline(never)
    private func plan(for request: GatewayRequest) throws -> AttemptPlan {
        switch request.operation {
        case .storedResponse, .deleteStoredResponse, .storedResponseInputItems:
            let id = request.path.split(separator: "/").dropFirst(2).first.map(String.init) ?? ""
            throw GatewayError(.notFound, type: "invalid_request_error",
                               "Response with id '\(id)' not found. This gateway keeps responses only with the response-store plugin.",
                               code: "response_not_found")
        default: break
        }
        guard let route = routes[request.model] else {
            throw GatewayError(.notFound, type: "invalid_request_error",
                               "The model `\(request.model)` does not exist or you do not have access to it.",
                               param: "model", code: "model_not_found")
        }
        if let reason = route.unconfigured {
            throw GatewayError(.serviceUnavailable, type: "server_error",
                               "The model `\(request.model)` is not available on this gateway: its provider is not configured (\(reason)).",
                               code: "provider_not_configured")
        }
        request.context.recordFacts { $0.upstreamStartedAt = .now }
        return AttemptPlan(route: route, retries: retries, giveUpAt: .now + deadline)
    }

    /// Before retrying after `plan.lastFailure` (`handle` calls it only then: an async call costs
    /// every request): a 429's `retry-after` when the same target comes again (up to
    /// `max_retry_after_s`), else exponential backoff with full jitter for the same target, and
    /// no wait when moving to another target. Returns false when the wait would pass the deadline
    /// (or the retry-after is too long): then the last failure stands.
    @inline(never)
    private func wait(before plan: AttemptPlan) async throws -> Bool {
        guard let last = plan.lastFailure, let target = plan.candidate?.target.target else { return true }
        let attempt = plan.attempts, giveUpAt = plan.giveUpAt
        guard last.target.provider == target.provider && last.target.model == target.model else { return true }
        let failure = last.error
        let delay: Duration
        if failure.status == .tooManyRequests, let seconds = failure.headers.first(name: "retry-after").flatMap(Double.init) {
            // The provider's number: compared before it becomes a Duration, which traps on NaN or huge values.
            guard seconds.isFinite, seconds >= 0, seconds <= maxRetryAfter.inSeconds else { return false }
            delay = .seconds(seconds)
        } else {
            delay = backoff * Int(1 << min(attempt - 1, 10)) * Double.random(in: 0...1)
        }
        guard ContinuousClock.now + delay < giveUpAt else { return false }
        try await Task.sleep(for: delay)
        return true
    }

    /// OpenAI's list, or Anthropic's when the client sends `anthropic-version` (the Anthropic
    /// SDKs always do), so both SDKs' `models.list()` work.
    @inline(never)
    private func listModels(for request: GatewayRequest) -> GatewayResponse {
        let identity = request.context.identity
        let names = modelOrder.filter { identity?.allows(model: $0) ?? true }
        let allocator = request.context.allocator
        guard request.headers.contains(name: "anthropic-version") else {
            let data = names.map { name -> JSON in ["id": JSON(name), "object": "model", "created": 0, "owned_by": "sluice"] }
            return .json(["object": "list", "data": JSON(array: data)], allocator: allocator)
        }
        let data = names.map { name -> JSON in
            ["type": "model", "id": JSON(name), "display_name": JSON(name), "created_at": "1970-01-01T00:00:00Z"]
        }
        return .json(["data": JSON(array: data), "has_more": false,
                      "first_id": names.first.map { JSON($0) } ?? .null, "last_id": names.last.map { JSON($0) } ?? .null],
                     allocator: allocator)
    }
}

/// A provider target's circuit opened (or half-opened) or closed again.
public struct CircuitChanged: Sendable {
    public var provider: String
    public var model: String
    public var isOpen: Bool
}
