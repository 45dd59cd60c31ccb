import Kernel
import NIOHTTP1

/// Where an OpenAI-wire API lives and how to authenticate to it.
struct OpenAIEndpoint: Sendable {
    /// The URL for an API path such as `/chat/completions` and the target's model.
    var url: @Sendable (_ path: String, _ model: String) -> String
    /// Authentication and the admin's extra headers.
    var headers: @Sendable () throws -> HTTPHeaders
    var timeout: Duration
    var connectTimeout: Duration
    /// Ask streams for their usage (`stream_options.include_usage`) even when the client did not.
    var requestsStreamUsage: Bool
    var limits: AnswerLimits
}

/// The settings every OpenAI-wire provider shares.
enum OpenAIProviderSettings {
    static func fields(defaultBaseURL: String?) -> [ConfigField] {
        [
            ConfigField("base_url", .string, required: defaultBaseURL == nil, default: defaultBaseURL.map { JSON($0) },
                        "the API root, including /v1 (e.g. http://127.0.0.1:8081/v1)"),
            ConfigField("api_key", .secret, required: defaultBaseURL != nil,
                        "the provider's key, sent as Authorization: Bearer; use {\"env\": \"NAME\"} or {\"file\": \"/path\"}"),
        ] + commonFields
    }

    static let commonFields = [
        ConfigField("headers", .map(.string), default: .object(), "extra headers sent with every request (values may be secret references)"),
        ConfigField("timeout_s", .number(min: 0.001), default: 600, "longest wait for a whole answer, or for the first byte of a stream"),
        ConfigField("connect_timeout_s", .number(min: 0.001), default: 10, "longest wait to connect"),
        ConfigField("stream_usage", .boolean, default: true,
                    "ask streams for token usage (stream_options.include_usage) and hide it from clients that did not ask"),
    ] + AnswerLimits.fields

    static func baseURL(_ config: PluginConfig) throws -> String {
        guard let url = config.string("base_url"), url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw config.error("base_url", "expected an http:// or https:// URL, got \"\(config.string("base_url") ?? "")\"")
        }
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    static func endpoint(_ config: PluginConfig) throws -> OpenAIEndpoint {
        let base = try baseURL(config)
        let apiKey = config.string("api_key")
        let extra = config.stringMap("headers")
        return OpenAIEndpoint(
            url: { path, _ in base + path },
            headers: {
                var headers = HTTPHeaders()
                if let apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
                for (name, value) in extra { headers.replaceOrAdd(name: name, value: value) }
                return headers
            },
            timeout: .seconds(config.double("timeout_s") ?? 600),
            connectTimeout: .seconds(config.double("connect_timeout_s") ?? 10),
            requestsStreamUsage: config.bool("stream_usage") ?? true,
            limits: AnswerLimits(config))
    }
}
