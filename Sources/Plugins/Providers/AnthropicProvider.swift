import Kernel

/// Anthropic's Messages API. Anthropic requests pass through but for the model name; OpenAI
/// chat requests are translated there and back (streams included).
public struct AnthropicProvider: Provider {
    public static let name = "anthropic"
    public static let summary = "Anthropic's Messages API (api.anthropic.com)"
    public static let configSchema = ConfigSchema([
        ConfigField("base_url", .string, default: "https://api.anthropic.com", "the API root; requests go to {base_url}/v1/messages"),
        ConfigField("api_key", .secret, required: true, "sent as x-api-key; use {\"env\": \"ANTHROPIC_API_KEY\"}"),
        ConfigField("anthropic_version", .string, default: "2023-06-01", "the anthropic-version header"),
        ConfigField("default_max_tokens", .positiveInteger, default: 4096,
                    "max_tokens for OpenAI requests that set none (Anthropic requires one)"),
        ConfigField("headers", .map(.string), default: .object(), "extra headers sent with every request"),
        ConfigField("timeout_s", .number(min: 0.001), default: 600, "longest wait for a whole answer, or for the first byte of a stream"),
        ConfigField("connect_timeout_s", .number(min: 0.001), default: 10, "longest wait to connect"),
    ] + AnswerLimits.fields)

    let wire: AnthropicWire

    public init(config: PluginConfig, context: PluginContext) throws {
        wire = AnthropicWire(settings: try AnthropicSettings(config), upstream: context.upstream)
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
}

struct AnthropicSettings: Sendable {
    var baseURL: String
    var apiKey: String
    var version: String
    var defaultMaxTokens: Int
    var headers: [(key: String, value: String)]
    var timeout: Duration
    var connectTimeout: Duration
    var limits: AnswerLimits

    init(_ config: PluginConfig) throws {
        baseURL = try OpenAIProviderSettings.baseURL(config)
        apiKey = config.string("api_key") ?? ""
        version = config.string("anthropic_version") ?? "2023-06-01"
        defaultMaxTokens = config.int("default_max_tokens") ?? 4096
        headers = config.stringMap("headers")
        timeout = .seconds(config.double("timeout_s") ?? 600)
        connectTimeout = .seconds(config.double("connect_timeout_s") ?? 10)
        limits = AnswerLimits(config)
    }
}
