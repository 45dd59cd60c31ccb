import Foundation
import Kernel

/// Google AI Studio's Gemini API (generativelanguage.googleapis.com). It speaks Gemini's own
/// format, so chat completions and embeddings are translated here; the Kernel brings Messages
/// and Responses requests to chat completions first, so every front door reaches it.
public struct GeminiProvider: Provider {
    public static let name = "gemini"
    public static let summary = "Google AI Studio's Gemini API (generativelanguage.googleapis.com)"

    public struct Settings: PluginSettings {
        @Setting("api_key", .secret, required: true, "sent as x-goog-api-key; use {\"env\": \"GEMINI_API_KEY\"}") public var apiKey = ""
        @Setting("base_url", "the API root; requests go to {base_url}/{api_version}/models/{model}:generateContent")
        public var baseURL = "https://generativelanguage.googleapis.com"
        @Setting("api_version", "the API version in the path (v1beta has every feature; v1 is the stable subset)")
        public var apiVersion = "v1beta"
        public var connection = ProviderConnection()
        public init() {}
    }

    let wire: GeminiWire
    let probeURL: String

    public init(settings: Settings, context: PluginContext) throws {
        let base = try settings.connection.checkedBaseURL(settings.baseURL, context: context)
        let version = settings.apiVersion.trimmingCharacters(in: ["/"])
        guard !version.isEmpty, version.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." }) else {
            throw context.configError("api_version", "expected a version such as \"v1beta\", got \"\(settings.apiVersion)\"")
        }
        let root = "\(base)/\(version)"
        let apiKey = settings.apiKey
        let endpoint = GeminiEndpoint(url: { model, method in "\(root)/models/\(GeminiEndpoint.segment(model)):\(method)" },
                                      authentication: { ["x-goog-api-key": apiKey] },
                                      embeddings: .batchEmbedContents, connection: settings.connection)
        wire = GeminiWire(endpoint: endpoint, upstream: context.upstream)
        probeURL = root + "/models?pageSize=1"
    }

    public var nativeOperations: Set<APIOperation> { GeminiWire.nativeOperations }
    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }

    /// `GET /models?pageSize=1`: costs nothing, and checks the key.
    public func probe() async -> ProbeResult? { await wire.probe(probeURL) }
}
