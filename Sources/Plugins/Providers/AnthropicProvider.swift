import Kernel

/// Anthropic's Messages API. Anthropic requests pass through but for the model name; the Kernel
/// translates the other front doors' requests to Messages and back (streams included).
public struct AnthropicProvider: Provider {
    public static let name = "anthropic"
    public static let summary = "Anthropic's Messages API (api.anthropic.com)"

    public struct Settings: PluginSettings {
        @Setting("base_url", "the API root; requests go to {base_url}/v1/messages") public var baseURL = "https://api.anthropic.com"
        @Setting("api_key", .secret, required: true, "sent as x-api-key; use {\"env\": \"ANTHROPIC_API_KEY\"}") public var apiKey = ""
        @Setting("anthropic_version", "the anthropic-version header") public var anthropicVersion = "2023-06-01"
        @Setting("default_max_tokens", .positiveInteger, "max_tokens for OpenAI requests that set none (Anthropic requires one)")
        public var defaultMaxTokens = 4096
        public var connection = ProviderConnection()
        public init() {}
    }

    let wire: AnthropicWire

    public init(settings: Settings, context: PluginContext) throws {
        wire = AnthropicWire(settings: try AnthropicSettings(settings, context: context), upstream: context.upstream)
    }

    public var nativeOperations: Set<APIOperation> { [.messages] }
    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
}

/// What talking to Anthropic needs, as the wire uses it.
struct AnthropicSettings: Sendable {
    var baseURL: String
    var apiKey: String
    var version: String
    var defaultMaxTokens: Int
    var headers: [(key: String, value: String)]
    var timeout: Duration
    var connectTimeout: Duration
    var limits: AnswerLimits

    init(_ settings: AnthropicProvider.Settings, context: PluginContext) throws {
        baseURL = try ProviderConnection.checkedBaseURL(settings.baseURL, context: context)
        apiKey = settings.apiKey
        version = settings.anthropicVersion
        defaultMaxTokens = settings.defaultMaxTokens
        headers = settings.connection.headers.pairs
        timeout = .seconds(settings.connection.timeout)
        connectTimeout = .seconds(settings.connection.connectTimeout)
        limits = settings.connection.limits
    }
}
