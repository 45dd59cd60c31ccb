import Kernel
import NIOHTTP1

/// The router's attempts at one request: each tier's targets in their weighted order, up to
/// `retries + 1` turns a tier, skipping targets without a provider or with an open circuit, all
/// within the deadline. It also turns an attempt's outcome into what the client gets.
///
/// Its steps are synchronous and not inlined into `Router.handle`, whose async frame then holds
/// only the loop's state (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
struct AttemptPlan {
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

    /// An attempt under way.
    struct Attempt {
        let candidate: Candidate
        let call: ProviderCall
        let span: AttemptSpan?
    }

    init(route: Route, retries: Int, giveUpAt: ContinuousClock.Instant) {
        self.route = route
        self.retries = retries
        self.giveUpAt = giveUpAt
    }

    /// The next target to try; nil when every tier's turns are used.
    @inline(never)
    mutating func next() throws -> Candidate? {
        while true {
            if order.isEmpty || turn > retries {
                tier += 1
                guard tier < route.tiers.count else { return nil }
                order = route.tiers[tier].order()
                turn = 0
                continue
            }
            try Task.checkCancellation()
            let target = order[turn % order.count]
            turn += 1
            if let provider = target.provider, target.circuit.allows() {
                return Candidate(tier: route.tiers[tier], target: target, provider: provider)
            }
        }
    }

    /// Starts an attempt at `candidate`; nil when the deadline has passed.
    @inline(never)
    mutating func begin(_ candidate: Candidate, request: GatewayRequest, timeout: Duration) -> Attempt? {
        let remaining = giveUpAt - .now
        guard remaining > .zero else { return nil }
        attempts += 1
        let target = candidate.target.target
        let span = request.context.attemptTracer?.startAttempt(provider: target.provider, upstreamModel: target.model, attempt: attempts)
        var headers = request.upstreamHeaders
        if let span { headers.add(contentsOf: span.headers) }
        let call = ProviderCall(request: request, upstreamModel: target.model, timeout: min(timeout, remaining), attempt: attempts,
                                headers: headers)
        return Attempt(candidate: candidate, call: call, span: span)
    }

    /// A provider's answer, as the client gets it.
    @inline(never)
    func answered(_ response: GatewayResponse, by attempt: Attempt, request: GatewayRequest) -> GatewayResponse {
        var response = response
        let target = attempt.candidate.target.target, tier = attempt.candidate.tier, attempts = attempts, route = route.name
        if let span = attempt.span { response = Self.ending(span, with: response, context: request.context) }
        attempt.candidate.target.circuit.recordSuccess()
        request.context.recordFacts { facts in
            facts.provider = target.provider
            facts.upstreamModel = target.model
            facts.attempts = attempts
            facts.usedFallback = tier.model != route
            facts.price = target.price ?? tier.price
            facts.upstreamRespondedAt = .now
        }
        response.provider = target.provider
        response.headers.replaceOrAdd(["x-sluice-attempts": String(decimal: attempts)])
        return response
    }

    /// Records a failed attempt, to be retried; throws what the client gets when it is not.
    @inline(never)
    mutating func failed(_ error: any Error, _ attempt: Attempt, request: GatewayRequest) throws {
        let target = attempt.candidate.target.target, attempts = attempts
        let failure = GatewayError(error, provider: target.provider)
        attempt.span?.end(failure, nil)
        if error is CancellationError || Task.isCancelled { throw error }
        let circuit = attempt.candidate.target.circuit
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
