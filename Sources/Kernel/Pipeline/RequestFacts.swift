/// What happened to a request, filled in along its way (by the router and providers) for the
/// plugins that report on it: access logs, metrics, tracing, budgets.
public struct RequestFacts: Sendable {
    /// The provider (a key of `providers`) that answered, and the model name it was sent.
    public var provider: String?
    public var upstreamModel: String?
    /// Upstream attempts made, and whether a fallback model answered.
    public var attempts = 0
    public var usedFallback = false
    /// When the first attempt started, and when the answering provider's response began.
    public var upstreamStartedAt: ContinuousClock.Instant?
    public var upstreamRespondedAt: ContinuousClock.Instant?
    /// The price of the target that answered, if the manifest gives one.
    public var price: Price?
    /// `hit`, `miss` or `bypass` when a cache plugin ran.
    public var cacheStatus: String?
    /// An MCP call's method, server, tool and outcome (requests to `/mcp` only).
    public var mcp: MCPCallFacts?

    public init() {}

    /// Time spent on the provider, all attempts: for a stream up to its end (`now`), for a whole
    /// answer up to its arrival. `nil` when no provider was asked.
    public func upstreamTime(now: ContinuousClock.Instant, streamed: Bool) -> Duration? {
        upstreamStartedAt.map { started in (streamed ? now : (upstreamRespondedAt ?? now)) - started }
    }
}

/// Prices in US dollars per million tokens.
public struct Price: Sendable, Equatable {
    public var input: Double
    public var output: Double
    /// Input tokens served from the provider's prompt cache; the input price when not given.
    public var cachedInput: Double

    public init(input: Double, output: Double, cachedInput: Double? = nil) {
        self.input = input
        self.output = output
        self.cachedInput = cachedInput ?? input
    }

    /// The cost of one answer's usage.
    public func cost(of usage: Usage) -> Double {
        let uncached = max(0, usage.inputTokens - usage.cachedInputTokens)
        return (Double(uncached) * input + Double(usage.cachedInputTokens) * cachedInput + Double(usage.outputTokens) * output) / 1_000_000
    }

    static let schema = ConfigSchema([
        ConfigField("input_per_million", .number(min: 0), required: true, "USD per million input tokens"),
        ConfigField("output_per_million", .number(min: 0), required: true, "USD per million output tokens"),
        ConfigField("cached_input_per_million", .number(min: 0), "USD per million cached input tokens (default: the input price)"),
    ])

    init?(_ json: JSON?) {
        guard let json, let input = json["input_per_million"]?.double, let output = json["output_per_million"]?.double else { return nil }
        self.init(input: input, output: output, cachedInput: json["cached_input_per_million"]?.double)
    }
}
