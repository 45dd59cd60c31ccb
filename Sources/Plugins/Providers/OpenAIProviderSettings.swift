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
    var transport: UpstreamTransport
    /// Ask streams for their usage (`stream_options.include_usage`) even when the client did not.
    var requestsStreamUsage: Bool
    var limits: AnswerLimits
    var caFile: String?
    /// Whether `/responses` is served (the Responses API), so Responses requests pass through.
    var speaksResponses = false
    /// Whether `/moderations` is served: OpenAI's own API and servers that copy it; Azure has none.
    var speaksModerations = false

    /// An endpoint that authenticates with `authentication`, then the admin's headers.
    init(_ options: OpenAIWireOptions, authentication: @escaping @Sendable () throws -> HTTPHeaders,
         url: @escaping @Sendable (_ path: String, _ model: String) -> String) {
        let extra = options.connection.headers.pairs
        self.url = url
        headers = {
            var headers = try authentication()
            for (name, value) in extra { headers.replaceOrAdd(name: name, value: value) }
            return headers
        }
        timeout = .seconds(options.connection.timeout)
        connectTimeout = .seconds(options.connection.connectTimeout)
        transport = options.connection.upstreamTransport
        requestsStreamUsage = options.streamUsage
        limits = options.connection.limits
        caFile = options.connection.caFile
    }

    /// The OpenAI API (or a server that speaks it) at `baseURL`, with a bearer key if any.
    init(baseURL: String, apiKey: String?, _ options: OpenAIWireOptions, context: PluginContext) throws {
        let base = try options.connection.checkedBaseURL(baseURL, context: context)
        self.init(options, authentication: { apiKey.map { ["authorization": "Bearer \($0)"] } ?? [:] }, url: { path, _ in base + path })
    }
}

/// What every provider of the OpenAI wire format takes besides where its API is.
public struct OpenAIWireOptions: PluginSettings {
    public var connection = ProviderConnection()
    @Setting("stream_usage", "ask streams for token usage (stream_options.include_usage) and hide it from clients that did not ask")
    public var streamUsage = true

    public init() {}
}
