import Kernel

/// Refuses malformed requests before they cost an upstream call: required fields, types,
/// ranges, message roles and order, size limits and allowed parameters. A refusal is a 400 in
/// the front door's shape with `param` naming the offending field's JSON path.
public struct Validation: Middleware {
    public static let name = "validation"
    public static let summary = "checks chat, embeddings and messages requests before they go anywhere"

    public struct Settings: PluginSettings {
        @Setting("max_tokens_cap", .positiveInteger, "largest max_tokens (or max_completion_tokens) accepted") public var maxTokensCap: Int?
        @Setting("clamp", "lower a max_tokens above the cap to the cap instead of refusing") public var clamp = false
        @Setting("max_messages", .positiveInteger, "most messages in one request") public var maxMessages = 1000
        @Setting("max_total_chars", .positiveInteger, "most characters of message text in one request") public var maxTotalCharacters: Int?
        @Setting("blocked_params", "request parameters refused with 400") public var blockedParams: [String] = []
        @Setting("allowed_params", "when set, the only request parameters accepted") public var allowedParams: [String]?
        public init() {}
    }

    let limits: RequestRules.Limits

    public init(settings: Settings, context: PluginContext) throws {
        limits = RequestRules.Limits(
            maxTokensCap: settings.maxTokensCap, clamp: settings.clamp, maxMessages: settings.maxMessages,
            maxTotalCharacters: settings.maxTotalCharacters, blockedParams: Set(settings.blockedParams),
            allowedParams: settings.allowedParams.map(Set.init))
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation != .listModels, request.operation != .other, request.operation != .mcp else { return try await next(request) }
        // Checked in a synchronous function: this frame lives as long as the request waits for
        // its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        guard let clamped = try checked(request) else { return try await next(request) }
        return try await next(clamped)
    }

    /// Refuses a request outside the limits; returns it with the numbers over a cap clamped, or
    /// nil when none was.
    @inline(never)
    private func checked(_ request: GatewayRequest) throws -> GatewayRequest? {
        var rules = RequestRules(limits: limits, body: request.body.view)
        try rules.check(request.operation)
        guard !rules.clamps.isEmpty else { return nil }
        var request = request
        for (key, cap) in rules.clamps { request.body.replaceMember(key, with: JSON(cap)) }
        return request
    }
}
