/// A checked plugins.json: what the admin selected, before any plugin is built.
public struct Manifest: Sendable {
    public var file: String
    public var server: ServerSettings
    /// Providers by name, in document order.
    public var providers: [ProviderEntry]
    /// Public models by name, in document order (the order of `GET /v1/models`).
    public var models: [ModelRoute]
    /// Pipeline entries that are enabled, top to bottom.
    public var pipeline: [PipelineEntry]
    /// Optional providers left out because a secret is missing, with the reason.
    public var unavailableProviders: [String: String] = [:]
    /// What was left out on purpose; shown by `sluice check` and logged at start.
    public var warnings: [ManifestError] = []

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
public struct ServerSettings: Sendable, Equatable {
    public var listen: [String]
    public var maxBodyBytes: Int
    public var drainTimeoutSeconds: Double
    public var idleTimeoutSeconds: Double
    public var headerTimeoutSeconds: Double
    public var healthProbeIntervalSeconds: Double
    public var maxConnections: Int
    public var maxJSONMemoryBytes: Int
    /// Keys for the operator's routes (`/metrics`, `/ready?verbose=1`); none: those are public.
    public var adminKeys: [NamedKey]

    static let schema = ConfigSchema([
        ConfigField("listen", .array(.string), default: ["127.0.0.1:8080"],
                    "addresses to listen on, as host:port ([::1]:8080 for IPv6); ignored under socket activation"),
        ConfigField("max_body_bytes", .positiveInteger, default: 8_388_608, "largest request body accepted; larger ones get 413"),
        ConfigField("drain_timeout_s", .number(min: 0), default: 30, "on SIGTERM, how long in-flight requests and streams may take to finish"),
        ConfigField("idle_timeout_s", .number(min: 0.001), default: 75, "close a keep-alive connection after this long without a request"),
        ConfigField("header_timeout_s", .number(min: 0.001), default: 10,
                    "a request must be fully received within this time of the connection's accept (its first request) or of its first byte"),
        ConfigField("health_probe_interval_s", .number(min: 0.1), default: 10, "how often providers are probed for GET /ready?verbose=1"),
        ConfigField("max_connections", .positiveInteger, default: 10_000,
                    "open client connections at most; one more is answered 503 and closed"),
        ConfigField("max_json_memory_bytes", .positiveInteger, default: 67_108_864,
                    "memory a request body's parsed JSON may take; a body needing more gets 413"),
        ConfigField("admin_keys", .array(.object(NamedKey.schema)), default: [],
                    "keys that GET /metrics, GET /ready?verbose=1 and other operator routes then require (Authorization: Bearer); none: those routes are public"),
    ])

    init(_ json: JSON) {
        listen = json["listen"]?.elements.compactMap(\.string) ?? []
        maxBodyBytes = json["max_body_bytes"]?.int ?? 8_388_608
        drainTimeoutSeconds = json["drain_timeout_s"]?.double ?? 30
        idleTimeoutSeconds = json["idle_timeout_s"]?.double ?? 75
        headerTimeoutSeconds = json["header_timeout_s"]?.double ?? 10
        healthProbeIntervalSeconds = json["health_probe_interval_s"]?.double ?? 10
        maxConnections = json["max_connections"]?.int ?? 10_000
        maxJSONMemoryBytes = json["max_json_memory_bytes"]?.int ?? 67_108_864
        adminKeys = (json["admin_keys"]?.elements ?? []).compactMap { try? NamedKey($0) }
    }
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
        public var provider: String
        /// The provider's own model (or Azure deployment) name.
        public var model: String
        public var weight: Int
        /// The price of this upstream model, if the manifest gives one.
        public var price: Price?
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
