import Kernel
import NIOHTTP1

/// The router's attempts at one request: each tier's targets in their weighted order, up to
/// `retries + 1` turns a tier, skipping targets without a provider or with an open circuit, all
/// within the deadline. It also turns an attempt's outcome into what the client gets.
///
/// Its steps are synchronous and not inlined into `Router.handle`, and it holds the target being
/// tried and its attempt's span itself: the router's async frame, which lives as long as the
/// request waits for its provider, then holds little more than a reference to it and the call
/// (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
final class AttemptPlan {
    let route: Route
    let retries: Int
    let giveUpAt: ContinuousClock.Instant
    /// Attempts made so far.
    private(set) var attempts = 0
    /// The last attempt's failure, when it is to be retried.
    private(set) var lastFailure: Failure?
    private var tier = -1
    /// The current tier's targets in this request's order, made when the tier is reached (it
    /// takes the tier's weighted pick).
    private var order: [Route.Target] = []
    private var turn = 0
    /// The target being tried, from `next` on.
    private(set) var candidate: Candidate?
    /// The span of the attempt under way, from `begin` on.
    private var span: AttemptSpan?

    struct Failure {
        let target: ModelRoute.Target
        let error: GatewayError
    }

    /// A target to try.
    struct Candidate {
        let tier: Route.Tier
        let target: Route.Target
        let provider: any Provider
    }

    init(route: Route, retries: Int, giveUpAt: ContinuousClock.Instant) {
        self.route = route
        self.retries = retries
        self.giveUpAt = giveUpAt
    }

    /// Moves to the next target to try (`candidate`); false when every tier's turns are used.
    @inline(never)
    func next() throws -> Bool {
        while true {
            if order.isEmpty || turn > retries {
                tier += 1
                guard tier < route.tiers.count else { return false }
                order = route.tiers[tier].order()
                turn = 0
                continue
            }
            try Task.checkCancellation()
            let target = order[turn % order.count]
            turn += 1
            if let provider = target.provider, target.circuit.allows() {
                candidate = Candidate(tier: route.tiers[tier], target: target, provider: provider)
                return true
            }
        }
    }

    /// Starts an attempt at `candidate`: its provider and the call to make it, or nil when the
    /// deadline has passed.
    @inline(never)
    func begin(request: GatewayRequest, timeout: Duration) -> (provider: any Provider, call: ProviderCall)? {
        let remaining = giveUpAt - .now
        guard let candidate, remaining > .zero else { return nil }
        attempts += 1
        let target = candidate.target.target
        span = request.context.attemptTracer?.startAttempt(provider: target.provider, upstreamModel: target.model, attempt: attempts)
        var headers = request.upstreamHeaders
        if let span { headers.add(contentsOf: span.headers) }
        return (candidate.provider, ProviderCall(request: request, upstreamModel: target.model, timeout: min(timeout, remaining),
                                                 attempt: attempts, headers: headers))
    }

    /// A provider's answer, as the client gets it.
    @inline(never)
    func answered(_ response: GatewayResponse, request: GatewayRequest) -> GatewayResponse {
        guard let candidate else { return response }
        var response = response
        let target = candidate.target, tier = candidate.tier, attempts = attempts, route = route.name
        if let span { response = Self.ending(span, with: response, context: request.context) }
        target.circuit.recordSuccess()
        request.context.recordFacts { facts in
            facts.provider = target.target.provider
            facts.upstreamModel = target.target.model
            facts.attempts = attempts
            facts.usedFallback = tier.model != route
            facts.price = target.target.price ?? tier.price
            facts.upstreamRespondedAt = .now
        }
        response.provider = target.target.provider
        response.headers.replaceOrAdd(["x-sluice-attempts": String(decimal: attempts)])
        return response
    }

    /// Records a failed attempt, to be retried; throws what the client gets when it is not.
    @inline(never)
    func failed(_ error: any Error, request: GatewayRequest) throws {
        guard let candidate else { throw error }
        let target = candidate.target.target, attempts = attempts
        let failure = GatewayError(error, provider: target.provider)
        span?.end(failure, nil)
        if error is CancellationError || Task.isCancelled { throw error }
        let circuit = candidate.target.circuit
        if Self.countsAgainstBreaker(failure) { circuit.recordFailure() } else { circuit.recordSuccess() }
        request.context.logger.warning("provider attempt failed", metadata: [
            "model": .string(request.model), "provider": .string(target.provider), "attempt": .stringConvertible(attempts),
            "status": .stringConvertible(failure.status.code), "error": .string(failure.message),
        ])
        request.context.recordFacts { $0.attempts = attempts }
        guard Self.isRetryable(failure) else { throw named(failure, model: request.model) }
        lastFailure = Failure(target: target, error: failure)
    }

    /// What the client gets when no attempt answered: the last failure, or the open circuits.
    @inline(never)
    func exhausted(model: String) -> GatewayError {
        if let lastFailure { return named(lastFailure.error, model: model) }
        var unavailable = GatewayError(.serviceUnavailable, type: "upstream_error",
                                       "The model `\(model)` is unavailable: every provider target is failing (circuit open); retry later.",
                                       code: "circuit_open")
        unavailable.headers.add(name: "x-sluice-attempts", value: "0")
        return unavailable
    }

    /// The failure as the client sees it, naming the public model.
    private func named(_ failure: GatewayError, model: String) -> GatewayError {
        var error = failure
        if failure.status.code >= 500 || failure.status == .tooManyRequests {
            error.message = "The model `\(model)` failed after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(failure.message)"
        }
        error.headers.replaceOrAdd(name: "x-sluice-attempts", value: String(decimal: attempts))
        return error
    }

    /// Ends an attempt's span when its answer ends: now for a whole answer, at the end of a stream.
    private static func ending(_ span: AttemptSpan, with response: GatewayResponse, context: RequestContext) -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole:
            span.end(nil, context.usage)
        case .events(let events):
            response.body = .events(events.observing({ _ in }, finished: { error in span.end(error.map { GatewayError($0) }, context.usage) }))
        }
        return response
    }

    private static func isRetryable(_ error: GatewayError) -> Bool {
        [429, 500, 502, 503, 504].contains(error.status.code)
    }

    /// Rate limiting says the provider is alive; only failures that suggest it is not count.
    private static func countsAgainstBreaker(_ error: GatewayError) -> Bool {
        [500, 502, 503, 504].contains(error.status.code)
    }
}
