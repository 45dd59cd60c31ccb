import Kernel

/// Any server that speaks the OpenAI API: vLLM, llama.cpp, Ollama, LM Studio, OpenAI itself.
/// OpenAI requests pass through as the client sent them but for the model name; Anthropic
/// requests are translated both ways.
public struct OpenAICompatibleProvider: Provider {
    public static let name = "openai-compatible"
    public static let summary = "a server that speaks the OpenAI API (vLLM, llama.cpp, Ollama, …)"

    public struct Settings: PluginSettings {
        @Setting("base_url", required: true, "the API root, including /v1 (e.g. http://127.0.0.1:8081/v1)") public var baseURL = ""
        @Setting("api_key", .secret, "the server's key, if it wants one, sent as Authorization: Bearer") public var apiKey: String?
        @Setting("responses_api", "the server serves the Responses API (/responses) itself; else Responses requests are translated to chat completions")
        public var responsesAPI = false
        public var options = OpenAIWireOptions()
        public init() {}
    }

    let wire: OpenAIWire

    public init(settings: Settings, context: PluginContext) throws {
        var endpoint = try OpenAIEndpoint(baseURL: settings.baseURL, apiKey: settings.apiKey, settings.options, context: context)
        endpoint.speaksResponses = settings.responsesAPI
        endpoint.speaksModerations = true
        wire = OpenAIWire(endpoint: endpoint, upstream: context.upstream)
    }

    public var nativeOperations: Set<APIOperation> { wire.nativeOperations }
    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
    public func probe() async -> ProbeResult? { await wire.probe() }
}

/// OpenAI's own API: the same wire format, with its base URL as the default and a key required.
public struct OpenAIProvider: Provider {
    public static let name = "openai"
    public static let summary = "OpenAI's API (api.openai.com)"

    public struct Settings: PluginSettings {
        @Setting("base_url", "the API root, including /v1") public var baseURL = "https://api.openai.com/v1"
        @Setting("api_key", .secret, required: true, "the key, sent as Authorization: Bearer; use {\"env\": \"OPENAI_API_KEY\"}")
        public var apiKey = ""
        @Setting("responses_api", "Responses requests pass through to /responses; false translates them to chat completions")
        public var responsesAPI = true
        public var options = OpenAIWireOptions()
        public init() {}
    }

    let wire: OpenAIWire

    public init(settings: Settings, context: PluginContext) throws {
        var endpoint = try OpenAIEndpoint(baseURL: settings.baseURL, apiKey: settings.apiKey, settings.options, context: context)
        endpoint.speaksResponses = settings.responsesAPI
        endpoint.speaksModerations = true
        wire = OpenAIWire(endpoint: endpoint, upstream: context.upstream)
    }

    public var nativeOperations: Set<APIOperation> { wire.nativeOperations }
    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
    public func probe() async -> ProbeResult? { await wire.probe() }
}
