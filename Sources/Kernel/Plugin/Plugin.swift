import NIOHTTP1

/// A plugin's life: decode its config (checked against the schema its `Settings` declare) →
/// build (`init`) → validate/connect (`start`) → serve (shared by all requests) → `shutdown`.
/// `shutdown` is also called when a later plugin of the same manifest failed to build.
public protocol Plugin: Sendable {
    /// The plugin's config as a typed value, declared once (see `PluginSettings`); `NoSettings`
    /// for a plugin without one.
    associatedtype Settings: PluginSettings
    /// What admins write in plugins.json: `"plugin": "rate-limit"`.
    static var name: String { get }
    /// One line for `sluice plugins`.
    static var summary: String { get }

    /// Builds the plugin from its settings. Throw `context.configError(key, message)` for
    /// problems the schema cannot express, so the admin sees the JSON path.
    init(settings: Settings, context: PluginContext) throws

    /// Called once after every plugin of the manifest was built, before serving.
    func start() async throws
    /// Called once when the manifest is retired (shutdown or reload), after its last request.
    func shutdown() async
    /// Extra HTTP routes served outside the pipeline (for example `GET /metrics`).
    var routes: [PluginRoute] { get }
}

extension Plugin {
    public static var summary: String { "" }
    public func start() async throws {}
    public func shutdown() async {}
    public var routes: [PluginRoute] { [] }

    /// What `config` accepts: drives the checks at start, `sluice plugins` and `sluice schema`.
    public static var configSchema: ConfigSchema { Settings.schema }

    /// Builds the plugin from a checked config (defaults filled in, secrets resolved).
    public static func build(config: PluginConfig, context: PluginContext) throws -> Self {
        try Self(settings: Settings.decode(config), context: context.configured(at: config.path))
    }
}

/// The settings of a plugin that takes no config.
public struct NoSettings: PluginSettings {
    public init() {}
}

/// Wraps the rest of the pipeline (the onion model): it may change the request, answer on its
/// own, or call `next` and look at or change the response.
public protocol Middleware: Plugin {
    /// A terminal middleware answers and never calls `next`; the pipeline must end with one.
    static var isTerminal: Bool { get }
    func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse
}

extension Middleware {
    public static var isTerminal: Bool { false }
}

/// The rest of the pipeline after a middleware.
public typealias Next = @Sendable (GatewayRequest) async throws -> GatewayResponse

/// Speaks one provider's wire format through the Kernel's upstream client.
public protocol Provider: Plugin {
    /// The operations this provider answers in their own wire format. The Kernel translates
    /// every other model operation to one of these and the answer back (`answer(_:)`), so a
    /// provider that speaks Chat Completions serves the Messages and Responses front doors too.
    /// Default: Chat Completions and Embeddings.
    var nativeOperations: Set<APIOperation> { get }
    /// What the provider speaks for one of its models, when that depends on the model (Vertex AI
    /// serves Gemini models in Gemini's format and Claude models in Anthropic's). Default:
    /// `nativeOperations`.
    func nativeOperations(for upstreamModel: String) -> Set<APIOperation>

    /// Sends one attempt of a request to the provider. Throws `GatewayError` (with an upstream
    /// status) when the provider answered with an error or could not be reached.
    func send(_ call: ProviderCall) async throws -> GatewayResponse

    /// A cheap reachability check, run periodically and shown by `GET /ready?verbose=1`.
    /// `nil` when the provider has no such check (the default).
    func probe() async -> ProbeResult?
}

extension APIOperation {
    /// What most providers speak natively. Made once: `Provider.answer` asks on every request.
    public static let chatAndEmbeddings: Set<APIOperation> = [.chatCompletions, .embeddings]
}

extension Provider {
    public var nativeOperations: Set<APIOperation> { APIOperation.chatAndEmbeddings }
    public func nativeOperations(for upstreamModel: String) -> Set<APIOperation> { nativeOperations }
    public func probe() async -> ProbeResult? { nil }
}

/// What one health probe of a provider found.
public struct ProbeResult: Sendable {
    public var isUp: Bool
    /// For example "HTTP 200" or "could not connect".
    public var detail: String

    public init(isUp: Bool, detail: String) {
        self.isUp = isUp
        self.detail = detail
    }
}

/// One attempt at a provider, as decided by the router.
public struct ProviderCall: Sendable {
    public var request: GatewayRequest
    /// The provider's own model name for this target.
    public var upstreamModel: String
    /// The whole attempt must finish (or, for streams, start) within this time.
    public var timeout: Duration
    /// 1 for the first attempt.
    public var attempt: Int
    /// Headers every provider sends with this attempt: the request's `upstreamHeaders`, then trace context.
    public var headers: HTTPHeaders

    public init(request: GatewayRequest, upstreamModel: String, timeout: Duration, attempt: Int = 1, headers: HTTPHeaders = [:]) {
        self.request = request
        self.upstreamModel = upstreamModel
        self.timeout = timeout
        self.attempt = attempt
        self.headers = headers
    }
}

/// An HTTP route a plugin serves outside the pipeline.
public struct PluginRoute: Sendable {
    /// Who may call a route.
    public enum Access: Sendable {
        /// What operators look at (`GET /metrics`): once `server.admin_keys` lists keys, one of
        /// them is required; without any, the route is public.
        case `operator`
        /// Anyone (a webhook that checks its own signature, say).
        case `public`
    }

    public var method: String
    /// An exact path, or a prefix ending in `/*` that matches every path below it
    /// (`/admin/*`: `/admin/keys/ci`); the handler reads the rest from `request.path`.
    public var path: String
    public var access: Access

    /// The prefix a `/*` path matches (with its slash), or `nil` for an exact path.
    public var pathPrefix: Substring? { path.hasSuffix("/*") ? path.dropLast() : nil }
    public var handler: @Sendable (GatewayRequest) async throws -> GatewayResponse

    public init(method: String, path: String, access: Access = .operator,
                handler: @escaping @Sendable (GatewayRequest) async throws -> GatewayResponse) {
        self.method = method
        self.path = path
        self.access = access
        self.handler = handler
    }
}
