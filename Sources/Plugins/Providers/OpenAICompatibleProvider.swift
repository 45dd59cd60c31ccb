import Kernel

/// Any server that speaks the OpenAI API: vLLM, llama.cpp, Ollama, LM Studio, OpenAI itself.
/// OpenAI requests pass through as the client sent them but for the model name; Anthropic
/// requests are translated both ways.
public struct OpenAICompatibleProvider: Provider {
    public static let name = "openai-compatible"
    public static let summary = "a server that speaks the OpenAI API (vLLM, llama.cpp, Ollama, …)"
    public static let configSchema = ConfigSchema(OpenAIProviderSettings.fields(defaultBaseURL: nil))

    let wire: OpenAIWire

    public init(config: PluginConfig, context: PluginContext) throws {
        wire = OpenAIWire(endpoint: try OpenAIProviderSettings.endpoint(config), upstream: context.upstream)
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
    public func probe() async -> ProbeResult? { await wire.probe() }
}

/// OpenAI's own API: the same wire format, with its base URL as the default and a key required.
public struct OpenAIProvider: Provider {
    public static let name = "openai"
    public static let summary = "OpenAI's API (api.openai.com)"
    public static let configSchema = ConfigSchema(OpenAIProviderSettings.fields(defaultBaseURL: "https://api.openai.com/v1"))

    let wire: OpenAIWire

    public init(config: PluginConfig, context: PluginContext) throws {
        wire = OpenAIWire(endpoint: try OpenAIProviderSettings.endpoint(config), upstream: context.upstream)
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
    public func probe() async -> ProbeResult? { await wire.probe() }
}
