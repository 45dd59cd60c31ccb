import Kernel
import NIOCore

/// The terminal stage: maps the public model to a provider target (by weight), sends the
/// request there, and on a retryable failure tries the next target, then the model's fallbacks.
/// Also answers `GET /v1/models` with the public models the caller may use.
public struct Router: Middleware {
    public static let name = "router"
    public static let summary = "sends each request to a provider target of its public model, with retries and fallbacks"
    public static let isTerminal = true
    public static let configSchema = ConfigSchema([
        ConfigField("retries", .nonNegativeInteger, default: 2, "extra attempts after a retryable failure (429, 5xx, connection errors)"),
        ConfigField("timeout_s", .number(min: 0.001), default: 600, "longest wait for one attempt (for streams: until the stream starts)"),
    ])

    let models: [String: ModelRoute]
    let modelOrder: [String]
    let providers: [String: any Provider]
    /// Optional providers left out of the manifest, with the reason.
    let unavailable: [String: String]
    let retries: Int
    let timeout: Duration

    public init(config: PluginConfig, context: PluginContext) throws {
        models = Dictionary(context.manifest.models.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        modelOrder = context.manifest.models.map(\.name)
        providers = context.providers
        unavailable = context.manifest.unavailableProviders
        retries = config.int("retries") ?? 2
        timeout = .seconds(config.double("timeout_s") ?? 600)
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        if request.operation == .listModels { return listModels(for: request) }
        guard let route = models[request.model] else {
            throw GatewayError(.notFound, type: "invalid_request_error",
                               "The model `\(request.model)` does not exist or you do not have access to it.",
                               param: "model", code: "model_not_found")
        }
        var lastError: GatewayError?
        let attempts = plan(for: route).filter { providers[$0.provider] != nil }
        if attempts.isEmpty, let reason = route.targets.lazy.compactMap({ self.unavailable[$0.provider] }).first {
            throw GatewayError(.serviceUnavailable, type: "server_error",
                               "The model `\(request.model)` is not available on this gateway: its provider is not configured (\(reason)).",
                               code: "provider_not_configured")
        }
        for (attempt, target) in attempts.enumerated() {
            try Task.checkCancellation()
            guard let provider = providers[target.provider] else { continue }
            let call = ProviderCall(request: request, upstreamModel: target.model, timeout: timeout, attempt: attempt + 1)
            do {
                var response = try await provider.send(call)
                response.provider = target.provider
                return response
            } catch {
                if error is CancellationError || Task.isCancelled { throw error }
                let failure = GatewayError(error, provider: target.provider)
                request.context.logger.warning("provider attempt failed", metadata: [
                    "provider": .string(target.provider), "attempt": .stringConvertible(attempt + 1),
                    "status": .stringConvertible(failure.status.code), "error": .string(failure.message),
                ])
                guard Self.isRetryable(failure) else { throw failure }
                lastError = failure
            }
        }
        throw lastError ?? GatewayError(.serviceUnavailable, type: "upstream_error", "no provider is available for `\(request.model)`",
                                        code: "no_provider")
    }

    /// The targets to try, in order: the model's own targets (weighted order, repeated up to
    /// `retries + 1` attempts), then each fallback model's the same way.
    func plan(for route: ModelRoute) -> [ModelRoute.Target] {
        var attempts: [ModelRoute.Target] = []
        for name in [route.name] + route.fallbacks {
            guard let model = models[name] else { continue }
            let order = Self.weightedOrder(model.targets)
            guard !order.isEmpty else { continue }
            attempts += (0...retries).map { order[$0 % order.count] }
        }
        return attempts
    }

    /// A random order in which a target is more likely to come first the higher its weight.
    static func weightedOrder(_ targets: [ModelRoute.Target]) -> [ModelRoute.Target] {
        var remaining = targets.filter { $0.weight > 0 }
        var order: [ModelRoute.Target] = []
        while !remaining.isEmpty {
            var pick = Int.random(in: 0..<remaining.reduce(0) { $0 + $1.weight })
            let index = remaining.firstIndex { target in
                pick -= target.weight
                return pick < 0
            }!
            order.append(remaining.remove(at: index))
        }
        return order
    }

    static func isRetryable(_ error: GatewayError) -> Bool {
        [429, 500, 502, 503, 504].contains(error.status.code)
    }

    private func listModels(for request: GatewayRequest) -> GatewayResponse {
        let identity = request.context.identity
        let data = modelOrder.filter { identity?.allows(model: $0) ?? true }.map { name -> JSON in
            ["id": JSON(name), "object": "model", "created": 0, "owned_by": "sluice"]
        }
        return .json(["object": "list", "data": JSON(array: data)], allocator: request.context.allocator)
    }
}
