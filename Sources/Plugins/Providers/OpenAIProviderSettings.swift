import Kernel

/// The settings every OpenAI-wire provider shares.
struct OpenAIProviderSettings: Sendable {
    var baseURL: String
    var apiKey: String?
    var headers: [(key: String, value: String)]
    var timeout: Duration
    var connectTimeout: Duration

    static func fields(defaultBaseURL: String?) -> [ConfigField] {
        [
            ConfigField("base_url", .string, required: defaultBaseURL == nil, default: defaultBaseURL.map { JSON($0) },
                        "the API root, including /v1 (e.g. http://127.0.0.1:8081/v1)"),
            ConfigField("api_key", .secret, required: defaultBaseURL != nil,
                        "the provider's key, sent as Authorization: Bearer; use {\"env\": \"NAME\"} or {\"file\": \"/path\"}"),
            ConfigField("headers", .map(.string), default: .object(), "extra headers sent with every request (values may be secret references)"),
            ConfigField("timeout_s", .number(min: 0.001), default: 600, "longest wait for a whole answer, or for the first byte of a stream"),
            ConfigField("connect_timeout_s", .number(min: 0.001), default: 10, "longest wait to connect"),
        ]
    }

    init(_ config: PluginConfig) throws {
        guard let baseURL = config.string("base_url"), baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw config.error("base_url", "expected an http:// or https:// URL, got \"\(config.string("base_url") ?? "")\"")
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        apiKey = config.string("api_key")
        headers = config.stringMap("headers")
        timeout = .seconds(config.double("timeout_s") ?? 600)
        connectTimeout = .seconds(config.double("connect_timeout_s") ?? 10)
    }
}
