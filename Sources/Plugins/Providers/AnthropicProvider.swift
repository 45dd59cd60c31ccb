import Kernel
import NIOHTTP1

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
        let base = try settings.connection.checkedBaseURL(settings.baseURL, context: context)
        let apiKey = settings.apiKey, version = settings.anthropicVersion
        let endpoint = AnthropicEndpoint(url: { _, _ in base + "/v1/messages" },
                                         authentication: { ["x-api-key": apiKey, "anthropic-version": version] },
                                         defaultMaxTokens: settings.defaultMaxTokens, connection: settings.connection)
        wire = AnthropicWire(endpoint: endpoint, upstream: context.upstream)
    }

    public var nativeOperations: Set<APIOperation> { AnthropicWire.nativeOperations }
    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
}

/// Where a Messages API lives and how to reach it: Anthropic's own, or Claude on Vertex AI, which
/// names the model in the URL and the API version in the body.
struct AnthropicEndpoint: Sendable {
    /// The URL that answers `model`, whole or streamed.
    var url: @Sendable (_ model: String, _ stream: Bool) -> String
    /// The credential headers (a token may have to be fetched first).
    var authentication: @Sendable () async throws -> HTTPHeaders
    /// Set for Vertex AI: the body carries this `anthropic_version` and no `model`.
    var bodyVersion: String?
    var defaultMaxTokens: Int
    var headers: [(key: String, value: String)]
    var timeout: Duration
    var connectTimeout: Duration
    var transport: UpstreamTransport
    var limits: AnswerLimits
    var caFile: String?

    init(url: @escaping @Sendable (_ model: String, _ stream: Bool) -> String,
         authentication: @escaping @Sendable () async throws -> HTTPHeaders,
         bodyVersion: String? = nil, defaultMaxTokens: Int, connection: ProviderConnection) {
        self.url = url
        self.authentication = authentication
        self.bodyVersion = bodyVersion
        self.defaultMaxTokens = defaultMaxTokens
        headers = connection.headers.pairs
        timeout = .seconds(connection.timeout)
        connectTimeout = .seconds(connection.connectTimeout)
        transport = connection.upstreamTransport
        limits = connection.limits
        caFile = connection.caFile
    }
}
