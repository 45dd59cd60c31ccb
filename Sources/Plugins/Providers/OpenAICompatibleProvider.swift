import Kernel
import NIOCore
import NIOHTTP1

/// Any server that speaks the OpenAI API: vLLM, llama.cpp, Ollama, LM Studio, OpenAI itself.
/// Bodies pass through as the client sent them but for the model name; streams pass through
/// event by event.
public struct OpenAICompatibleProvider: Provider {
    public static let name = "openai-compatible"
    public static let summary = "a server that speaks the OpenAI API (vLLM, llama.cpp, Ollama, …)"
    public static let configSchema = ConfigSchema(OpenAIProviderSettings.fields(defaultBaseURL: nil))

    let settings: OpenAIProviderSettings
    let upstream: UpstreamClient

    public init(config: PluginConfig, context: PluginContext) throws {
        settings = try OpenAIProviderSettings(config)
        upstream = context.upstream
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse {
        try await OpenAIWire.send(call, settings: settings, upstream: upstream)
    }

    public func probe() async -> ProbeResult? {
        await OpenAIWire.probe(settings: settings, upstream: upstream)
    }
}

/// OpenAI's own API: the same wire format, with its base URL as the default and a key required.
public struct OpenAIProvider: Provider {
    public static let name = "openai"
    public static let summary = "OpenAI's API (api.openai.com)"
    public static let configSchema = ConfigSchema(OpenAIProviderSettings.fields(defaultBaseURL: "https://api.openai.com/v1"))

    let settings: OpenAIProviderSettings
    let upstream: UpstreamClient

    public init(config: PluginConfig, context: PluginContext) throws {
        settings = try OpenAIProviderSettings(config)
        upstream = context.upstream
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse {
        try await OpenAIWire.send(call, settings: settings, upstream: upstream)
    }

    public func probe() async -> ProbeResult? {
        await OpenAIWire.probe(settings: settings, upstream: upstream)
    }
}
