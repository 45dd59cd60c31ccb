import Kernel

/// Refuses malformed requests before they cost an upstream call: required fields, types,
/// ranges, message roles and order, size limits and allowed parameters. A refusal is a 400 in
/// the front door's shape with `param` naming the offending field's JSON path.
public struct Validation: Middleware {
    public static let name = "validation"
    public static let summary = "checks chat, embeddings and messages requests before they go anywhere"
    public static let configSchema = ConfigSchema([
        ConfigField("max_tokens_cap", .positiveInteger, "largest max_tokens (or max_completion_tokens) accepted"),
        ConfigField("clamp", .boolean, default: false, "lower a max_tokens above the cap to the cap instead of refusing"),
        ConfigField("max_messages", .positiveInteger, default: 1000, "most messages in one request"),
        ConfigField("max_total_chars", .positiveInteger, "most characters of message text in one request"),
        ConfigField("blocked_params", .array(.string), default: [], "request parameters refused with 400"),
        ConfigField("allowed_params", .array(.string), "when set, the only request parameters accepted"),
    ])

    let limits: RequestRules.Limits

    public init(config: PluginConfig, context: PluginContext) throws {
        limits = RequestRules.Limits(
            maxTokensCap: config.int("max_tokens_cap"), clamp: config.bool("clamp") ?? false,
            maxMessages: config.int("max_messages") ?? 1000, maxTotalCharacters: config.int("max_total_chars"),
            blockedParams: Set(config.strings("blocked_params")),
            allowedParams: config["allowed_params"].map { Set($0.elements.compactMap(\.string)) })
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation != .listModels, request.operation != .other else { return try await next(request) }
        var rules = RequestRules(limits: limits, body: request.body.json)
        try rules.check(request.operation)
        guard let clamped = rules.clampedBody else { return try await next(request) }
        var request = request
        request.body.json = clamped
        return try await next(request)
    }
}
