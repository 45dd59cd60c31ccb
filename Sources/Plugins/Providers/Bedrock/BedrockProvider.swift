import Kernel

/// Amazon Bedrock Runtime: chat through the Converse API (ConverseStream for streams, answered in
/// AWS's binary event stream framing), embeddings through InvokeModel (Titan and Cohere), every
/// request signed with AWS Signature Version 4. It speaks Chat Completions and Embeddings; the
/// Kernel translates the other front doors' requests to chat.
///
///     "providers": { "bedrock": { "plugin": "bedrock", "config": { "region": "us-east-1" } } }
///
/// reads the credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
public struct BedrockProvider: Provider {
    public static let name = "bedrock"
    public static let summary = "Amazon Bedrock Runtime (Converse, InvokeModel embeddings; SigV4)"

    public struct Settings: PluginSettings {
        @Setting("region", required: true, "the AWS region, e.g. us-east-1 (signed into every request)") public var region = ""
        @Setting("base_url", "the runtime endpoint; absent: https://bedrock-runtime.{region}.amazonaws.com") public var baseURL: String?
        @Setting("access_key_id", .secret, "the access key id; absent: the AWS_ACCESS_KEY_ID environment variable")
        public var accessKeyID: String?
        @Setting("secret_access_key", .secret, "the secret access key; absent: the AWS_SECRET_ACCESS_KEY environment variable")
        public var secretAccessKey: String?
        @Setting("session_token", .secret,
                 "the session token of temporary credentials; absent: AWS_SESSION_TOKEN when the keys come from the environment")
        public var sessionToken: String?
        @Setting("embedding_concurrency", .positiveInteger,
                 "InvokeModel calls in flight at once for one embeddings request (Titan embeds one input per call)")
        public var embeddingConcurrency = 4
        public var connection = ProviderConnection()
        public init() {}
    }

    let wire: BedrockWire

    public init(settings: Settings, context: PluginContext) throws {
        wire = BedrockWire(settings: try BedrockSettings(settings, context: context), upstream: context.upstream)
    }

    public var nativeOperations: Set<APIOperation> { APIOperation.chatAndEmbeddings }
    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
    public func probe() async -> ProbeResult? { await wire.probe() }
}

/// What talking to Bedrock needs, checked, as the wire uses it.
struct BedrockSettings: Sendable {
    var endpoint: BedrockEndpoint
    var signer: SigV4Signer
    var embeddingConcurrency: Int
    var headers: [(key: String, value: String)]
    var timeout: Duration
    var connectTimeout: Duration
    var transport: UpstreamTransport
    var limits: AnswerLimits
    var caFile: String?

    init(_ settings: BedrockProvider.Settings, context: PluginContext) throws {
        let region = settings.region
        guard !region.isEmpty, region.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else {
            throw context.configError("region", "expected an AWS region such as us-east-1, got \"\(region)\"")
        }
        let base = try settings.connection.checkedBaseURL(settings.baseURL ?? "https://bedrock-runtime.\(region).amazonaws.com", context: context)
        endpoint = BedrockEndpoint(baseURL: base)
        signer = SigV4Signer(credentials: try Self.credentials(settings, context: context), region: region, service: "bedrock")
        embeddingConcurrency = settings.embeddingConcurrency
        headers = settings.connection.headers.pairs
        timeout = .seconds(settings.connection.timeout)
        connectTimeout = .seconds(settings.connection.connectTimeout)
        transport = settings.connection.upstreamTransport
        limits = settings.connection.limits
        caFile = settings.connection.caFile
    }

    /// The configured keys, or else the environment's: never half of each, so a session token
    /// always belongs to the keys it is sent with.
    static func credentials(_ settings: BedrockProvider.Settings, context: PluginContext) throws -> AWSCredentials {
        switch (settings.accessKeyID, settings.secretAccessKey) {
        case let (id?, secret?):
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: settings.sessionToken)
        case (nil, nil):
            let environment = context.environment
            guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
                  let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
            else {
                throw context.configError(nil, "no AWS credentials: give \"access_key_id\" and \"secret_access_key\", "
                                              + "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            }
            let token = settings.sessionToken ?? environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
        case (nil, _):
            throw context.configError("access_key_id", "required with \"secret_access_key\"")
        case (_, nil):
            throw context.configError("secret_access_key", "required with \"access_key_id\"")
        }
    }
}

/// Where the runtime API lives: the URL requests go to, and the host and path they are signed for.
struct BedrockEndpoint: Sendable {
    let baseURL: String
    /// `host[:port]`, the port left out when it is the scheme's default, as the Host header says.
    let host: String
    /// A path prefix of the base URL (a proxy's), signed with the rest of the path.
    let pathPrefix: String

    init(baseURL: String) {
        self.baseURL = baseURL
        let https = baseURL.hasPrefix("https://")
        let rest = baseURL.dropFirst(https ? 8 : 7)
        let authority = rest.prefix { $0 != "/" }
        pathPrefix = String(rest.dropFirst(authority.count))
        var host = authority.lowercased()
        if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
        let defaultPort = https ? ":443" : ":80"
        if host.hasSuffix(defaultPort) { host = String(host.dropLast(defaultPort.count)) }
        self.host = host
    }

    /// The wire path of a model's action: the model id (which may be an ARN, with `:` and `/`)
    /// encoded as one path segment.
    static func modelPath(_ model: String, _ action: String) -> String {
        "/model/\(SigV4Signer.uriEncode(model))/\(action)"
    }
}
