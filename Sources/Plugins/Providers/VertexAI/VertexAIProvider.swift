import Foundation
import Kernel
import NIOHTTP1

/// Google Cloud's Vertex AI: Gemini models in Gemini's format (translated here, as for `gemini`),
/// embedding models through `predict`, and Anthropic's Claude models (a target model named
/// `claude…`) in Anthropic's Messages format through `rawPredict`. It authenticates with a
/// service account key, traded for access tokens as needed, or with an access token an agent
/// keeps fresh in a file.
public struct VertexAIProvider: Provider {
    public static let name = "vertex-ai"
    public static let summary = "Google Cloud Vertex AI (Gemini, embeddings and Claude models)"

    public struct Settings: PluginSettings {
        @Setting("project", required: true, "the Google Cloud project ID") public var project = ""
        @Setting("location", "the region (us-central1, europe-west4, …) or \"global\"") public var location = "us-central1"
        @Setting("base_url", "the API root; default https://{location}-aiplatform.googleapis.com (https://aiplatform.googleapis.com for global)")
        public var baseURL: String?
        @Setting("credentials", .secret,
                 "a service account key file's JSON, best as {\"file\": \"/etc/sluice/vertex-sa.json\"}; exchanged for access tokens as needed")
        public var credentials: String?
        @Setting("access_token", .secret,
                 "instead of credentials: an OAuth access token; given as {\"file\": …} or {\"credential\": …} it is re-read as it changes")
        public var accessToken: String?
        @Setting("anthropic_version", "the anthropic_version sent in Claude models' bodies") public var anthropicVersion = "vertex-2023-10-16"
        @Setting("default_max_tokens", .positiveInteger, "max_tokens for Claude requests that set none (Anthropic requires one)")
        public var defaultMaxTokens = 4096
        public var connection = ProviderConnection()
        public init() {}
    }

    let gemini: GeminiWire
    let claude: AnthropicWire
    let credentials: VertexCredentials

    public init(settings: Settings, context: PluginContext) throws {
        let project = settings.project, location = settings.location
        for (key, value) in [("project", project), ("location", location)] where !Self.isPathSegment(value) {
            throw context.configError(key, "expected a name of letters, digits and dashes, got \"\(value)\"")
        }
        let defaultBase = location == "global" ? "https://aiplatform.googleapis.com" : "https://\(location)-aiplatform.googleapis.com"
        let base = try settings.connection.checkedBaseURL(settings.baseURL ?? defaultBase, context: context)
        let credentials = try VertexCredentials(settings, context: context)
        self.credentials = credentials
        let root = "\(base)/v1/projects/\(project)/locations/\(location)/publishers"
        let authentication: @Sendable () async throws -> HTTPHeaders = {
            let token = try await credentials.token()
            return ["authorization": "Bearer \(token)"]
        }
        gemini = GeminiWire(endpoint: GeminiEndpoint(
            url: { model, method in "\(root)/google/models/\(GeminiEndpoint.segment(model)):\(method)" },
            authentication: authentication, embeddings: .predict, connection: settings.connection), upstream: context.upstream)
        claude = AnthropicWire(endpoint: AnthropicEndpoint(
            url: { model, stream in "\(root)/anthropic/models/\(GeminiEndpoint.segment(model)):\(stream ? "streamRawPredict" : "rawPredict")" },
            authentication: authentication, bodyVersion: settings.anthropicVersion, defaultMaxTokens: settings.defaultMaxTokens,
            connection: settings.connection), upstream: context.upstream)
    }

    static func isPathSegment(_ value: String) -> Bool {
        !value.isEmpty && value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    static func isClaude(_ model: String) -> Bool { model.lowercased().hasPrefix("claude") }

    public var nativeOperations: Set<APIOperation> { GeminiWire.nativeOperations }

    /// Claude models speak Anthropic's Messages format on Vertex AI; the rest speak Gemini's.
    public func nativeOperations(for upstreamModel: String) -> Set<APIOperation> {
        Self.isClaude(upstreamModel) ? AnthropicWire.nativeOperations : GeminiWire.nativeOperations
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse {
        Self.isClaude(call.upstreamModel) ? try await claude.send(call) : try await gemini.send(call)
    }

    /// Obtaining an access token: with a service account, a round trip to the token endpoint that
    /// checks the key (Vertex AI has no free authenticated call to make with it).
    public func probe() async -> ProbeResult? {
        do {
            _ = try await credentials.token()
            return ProbeResult(isUp: true, detail: "access token obtained")
        } catch let error as GatewayError {
            return ProbeResult(isUp: false, detail: error.message)
        } catch {
            return ProbeResult(isUp: false, detail: String(describing: error))
        }
    }
}

/// How the provider obtains the bearer token it sends.
enum VertexCredentials: Sendable {
    case serviceAccount(ServiceAccountTokens)
    case fixed(String)
    case file(TokenFile)

    init(_ settings: VertexAIProvider.Settings, context: PluginContext) throws {
        switch (settings.credentials, settings.accessToken) {
        case (let json?, nil):
            do {
                let account = try ServiceAccount(json: json)
                self = .serviceAccount(ServiceAccountTokens(account: account, upstream: context.upstream, logger: context.logger))
            } catch {
                throw context.configError("credentials", error.reason)
            }
        case (nil, let token?):
            if let path = context.secretReference("access_token")?.path(environment: context.environment) {
                self = .file(TokenFile(path))
            } else {
                self = .fixed(token)
            }
        default:
            throw context.configError(nil, "give either \"credentials\" (a service account key) or \"access_token\"")
        }
    }

    func token() async throws -> String {
        switch self {
        case .serviceAccount(let tokens): try await tokens.token()
        case .fixed(let token): token
        case .file(let file): try file.token()
        }
    }
}
