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
    public static let configSchema = ConfigSchema([
        ConfigField("base_url", .string, required: true, "the resource endpoint, e.g. https://NAME.openai.azure.com"),
        ConfigField("api_version", .string, default: "2024-10-21", "the api-version query parameter"),
        ConfigField("api_key", .secret, "the resource key, sent as the api-key header"),
        ConfigField("entra_token_file", .string, "instead of api_key: a file holding a Microsoft Entra access token (re-read when it changes)"),
    ] + OpenAIProviderSettings.commonFields)

    let wire: OpenAIWire

    public init(config: PluginConfig, context: PluginContext) throws {
        let base = try OpenAIProviderSettings.baseURL(config)
        let version = config.string("api_version") ?? "2024-10-21"
        let apiKey = config.string("api_key")
        let tokenFile = config.string("entra_token_file").map(TokenFile.init)
        guard (apiKey == nil) != (tokenFile == nil) else {
            throw config.error(nil, "give either \"api_key\" or \"entra_token_file\"")
        }
        let extra = config.stringMap("headers")
        let query = "?api-version=" + (version.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? version)
        let endpoint = OpenAIEndpoint(
            url: { path, deployment in
                let escaped = deployment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? deployment
                return "\(base)/openai/deployments/\(escaped)\(path)\(query)"
            },
            headers: {
                var headers = HTTPHeaders()
                if let apiKey { headers.add(name: "api-key", value: apiKey) }
                if let tokenFile { headers.add(name: "authorization", value: "Bearer \(try tokenFile.token())") }
                for (name, value) in extra { headers.replaceOrAdd(name: name, value: value) }
                return headers
            },
            timeout: .seconds(config.double("timeout_s") ?? 600),
            connectTimeout: .seconds(config.double("connect_timeout_s") ?? 10),
            requestsStreamUsage: config.bool("stream_usage") ?? true,
            limits: AnswerLimits(config))
        wire = OpenAIWire(endpoint: endpoint, upstream: context.upstream)
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse { try await wire.send(call) }
}

/// A token file, re-read at most every few seconds (agents rotate tokens by rewriting the file).
final class TokenFile: Sendable {
    let path: String
    private let cache = NIOLockedValueBox<(token: String, readAt: ContinuousClock.Instant)?>(nil)

    init(_ path: String) { self.path = path }

    func token() throws -> String {
        if let cached = cache.withLockedValue({ $0 }), ContinuousClock.now - cached.readAt < .seconds(5) { return cached.token }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw GatewayError(.badGateway, type: "upstream_error", "the provider's token file cannot be read", code: "provider_credentials")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        cache.withLockedValue { $0 = (token, .now) }
        return token
    }
}
