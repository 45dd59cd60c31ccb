import Foundation
import Kernel
import NIOConcurrencyHelpers
import NIOHTTP1

/// Azure OpenAI: the OpenAI wire format at `/openai/deployments/{deployment}/…?api-version=…`,
/// where a target's `model` is the deployment name. Authenticates with an `api-key`, or with a
/// Microsoft Entra bearer token read from a file that an identity agent keeps fresh.
public struct AzureOpenAIProvider: Provider {
    public static let name = "azure-openai"
    public static let summary = "Azure OpenAI deployments"

    public struct Settings: PluginSettings {
        @Setting("base_url", required: true, "the resource endpoint, e.g. https://NAME.openai.azure.com") public var baseURL = ""
        @Setting("api_version", "the api-version query parameter") public var apiVersion = "2024-10-21"
        @Setting("api_key", .secret, "the resource key, sent as the api-key header") public var apiKey: String?
        @Setting("entra_token_file", "instead of api_key: a file holding a Microsoft Entra access token (re-read when it changes)")
        public var entraTokenFile: String?
        @Setting("responses_api", "Responses requests pass through to /openai/v1/responses; false translates them to chat completions")
        public var responsesAPI = true
        public var options = OpenAIWireOptions()
        public init() {}
    }

    let wire: OpenAIWire

    public init(settings: Settings, context: PluginContext) throws {
        let base = try settings.options.connection.checkedBaseURL(settings.baseURL, context: context)
        let version = settings.apiVersion
        let apiKey = settings.apiKey
        let tokenFile = settings.entraTokenFile.map { TokenFile($0) }
        guard (apiKey == nil) != (tokenFile == nil) else {
            throw context.configError(nil, "give either \"api_key\" or \"entra_token_file\"")
        }
        let query = "?api-version=" + (version.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? version)
        var endpoint = OpenAIEndpoint(settings.options, authentication: {
            var headers = HTTPHeaders()
            if let apiKey { headers.add(name: "api-key", value: apiKey) }
            if let tokenFile { headers.add(name: "authorization", value: "Bearer \(try tokenFile.token())") }
            return headers
        }, url: { path, deployment in
            // The Responses API lives only under Azure's v1 API, which names the deployment in the body's model.
            if path == "/responses" { return "\(base)/openai/v1/responses" }
            let escaped = deployment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? deployment
            return "\(base)/openai/deployments/\(escaped)\(path)\(query)"
        })
        endpoint.speaksResponses = settings.responsesAPI
        wire = OpenAIWire(endpoint: endpoint, upstream: context.upstream)
    }

    public var nativeOperations: Set<APIOperation> { wire.nativeOperations }
    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
}

/// A token file, re-read at most every few seconds (agents rotate tokens by rewriting the file).
final class TokenFile: Sendable {
    let path: String
    let rereadAfter: Duration
    private let cache = NIOLockedValueBox<(token: String, readAt: ContinuousClock.Instant)?>(nil)

    init(_ path: String, rereadAfter: Duration = .seconds(5)) {
        self.path = path
        self.rereadAfter = rereadAfter
    }

    func token() throws -> String {
        if let cached = cache.withLockedValue({ $0 }), ContinuousClock.now - cached.readAt < rereadAfter { return cached.token }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw GatewayError(.badGateway, type: "upstream_error", "the provider's token file cannot be read", code: "provider_credentials")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        cache.withLockedValue { $0 = (token, .now) }
        return token
    }
}
