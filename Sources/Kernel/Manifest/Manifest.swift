/// A checked plugins.json: what the admin selected, before any plugin is built.
public struct Manifest: Sendable {
    public var file: String
    public var server: ServerSettings
    /// The state database, when the manifest names one (`"database": {"url": …}`).
    public var database: DatabaseSettings?
    /// Providers by name, in document order.
    public var providers: [ProviderEntry]
    /// Public models by name, in document order (the order of `GET /v1/models`).
    public var models: [ModelRoute]
    /// Pipeline entries that are enabled, top to bottom.
    public var pipeline: [PipelineEntry]
    /// `mcp_servers` and the settings of the `/mcp` endpoint.
    public var mcp = MCPManifest()
    /// Optional providers left out because a secret is missing, with the reason.
    public var unavailableProviders: [String: String] = [:]
    /// What was left out on purpose; shown by `sluice check` and logged at start.
    public var warnings: [ManifestError] = []
    /// Where each setting given as a secret reference was read from, by its path in the manifest.
    public var secretReferences: [String: SecretReference] = [:]

    public struct ProviderEntry: Sendable {
        public var name: String
        public var plugin: String
        public var config: JSON
        public var path: String
    }

    public struct PipelineEntry: Sendable {
        public var plugin: String
        public var config: JSON
        public var path: String
    }

    public func model(named name: String) -> ModelRoute? { models.first { $0.name == name } }
}

/// The `server` section.
public struct ServerSettings: PluginSettings {
    @Setting("listen", "addresses to listen on, as host:port ([::1]:8080 for IPv6); ignored under socket activation")
    public var listen = ["127.0.0.1:8080"]
    @Setting("max_body_bytes", .positiveInteger, "largest request body accepted; larger ones get 413") public var maxBodyBytes = 8_388_608
    @Setting("drain_timeout_s", .number(min: 0), "on SIGTERM, how long in-flight requests and streams may take to finish")
    public var drainTimeoutSeconds = 30.0
    @Setting("idle_timeout_s", .number(min: 0.001), "close a keep-alive connection after this long without a request")
    public var idleTimeoutSeconds = 75.0
    @Setting("header_timeout_s", .number(min: 0.001),
             "a request must be fully received within this time of the connection's accept (its first request) or of its first byte")
    public var headerTimeoutSeconds = 10.0
    @Setting("health_probe_interval_s", .number(min: 0.1), "how often providers are probed for GET /ready?verbose=1")
    public var healthProbeIntervalSeconds = 10.0
    @Setting("max_connections", .positiveInteger, "open client connections at most; one more is answered 503 and closed")
    public var maxConnections = 10_000
    @Setting("max_json_memory_bytes", .positiveInteger, "memory a request body's parsed JSON may take; a body needing more gets 413")
    public var maxJSONMemoryBytes = 67_108_864
    @Setting("admin_keys",
             "keys that GET /metrics, GET /ready?verbose=1 and other operator routes then require (Authorization: Bearer); none: those routes are public")
    public var adminKeySettings: [KeySettings] = []

    public init() {}

    /// Keys for the operator's routes (`/metrics`, `/ready?verbose=1`); none: those are public.
    public var adminKeys: [NamedKey] { adminKeySettings.compactMap { try? $0.named() } }
}

/// A public model (a key of `models`): where the router may send it.
public struct ModelRoute: Sendable {
    public var name: String
    public var targets: [Target]
    /// Public models to try, in order, when every target failed.
    public var fallbacks: [String]
    /// The price of this public model (a target's own price wins).
    public var price: Price?

    public struct Target: Sendable {
        public let provider: String
        /// The provider's own model (or Azure deployment) name.
        public let model: String
        public var weight: Int
        /// The price of this upstream model, if the manifest gives one.
        public var price: Price?

        public init(provider: String, model: String, weight: Int, price: Price?) {
            self.provider = provider
            self.model = model
            self.weight = weight
            self.price = price
        }
    }

    static let schema = ConfigSchema([
        ConfigField("targets", .array(.object(ConfigSchema([
            ConfigField("provider", .string, required: true, "a key of providers"),
            ConfigField("model", .string, required: true, "the model name the provider knows"),
            ConfigField("weight", .nonNegativeInteger, default: 1, "share of traffic among this model's targets"),
            ConfigField("price", .object(Price.schema), "what this upstream model costs (overrides the model's price)"),
        ]))), required: true, "where requests for this model go; one is picked by weight"),
        ConfigField("fallbacks", .array(.string), default: [], "public models tried in order when every target failed"),
        ConfigField("price", .object(Price.schema), "what this model costs, for cost accounting in logs and metrics"),
    ])
}
