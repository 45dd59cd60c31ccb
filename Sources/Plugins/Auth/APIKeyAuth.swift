import Crypto
import Foundation
import Kernel
import NIOHTTP1

/// Authenticates callers by API key. Keys are held only as SHA-256 digests and compared in
/// constant time; a key may be limited to some public models. The key's `name` (never the key)
/// becomes the caller identity for later plugins. Its whole check runs on the request's head,
/// before the body is read (`Authenticator`).
public struct APIKeyAuth: Authenticator {
    public static let name = "api-key-auth"
    public static let summary = "requires a known API key (Authorization: Bearer, x-api-key or api-key)"
    public static let configSchema = ConfigSchema([
        ConfigField("keys", .array(.object(ConfigSchema(NamedKey.fields + [
            ConfigField("models", .array(.string), default: ["*"], "public models this key may use; \"*\" for all"),
            ConfigField("optional", .boolean, default: false, "true: leave this key out (with a warning) when its secret is missing"),
        ]))), required: true, "the accepted keys"),
    ])

    public let credentialDigests: [KeyDigest]
    let identities: [CallerIdentity]

    public init(config: PluginConfig, context: PluginContext) throws {
        var digests: [KeyDigest] = []
        var identities: [CallerIdentity] = []
        var names: Set<String> = []
        for entry in config.objects("keys") {
            let key: NamedKey
            do { key = try NamedKey(entry.json) } catch { throw entry.error(error.field, error.message) }
            guard names.insert(key.name).inserted else { throw entry.error("name", "another key is already named \"\(key.name)\"") }
            let models = entry.strings("models")
            digests.append(key.digest)
            identities.append(CallerIdentity(name: key.name, allowedModels: models.contains("*") ? nil : Set(models)))
        }
        if digests.isEmpty {
            context.logger.warning("api-key-auth has no usable keys: every request will be refused with 401",
                                   metadata: ["path": .string(config.path)])
        }
        credentialDigests = digests
        self.identities = identities
    }

    public func screen(_ headers: HTTPHeaders) -> AuthVerdict {
        guard let presented = headers.presentedKey else {
            return .refused(GatewayError(.unauthorized, type: "authentication_error",
                                         "You didn't provide an API key. Send it as `Authorization: Bearer KEY` (or in an `x-api-key` header).",
                                         code: "missing_api_key"))
        }
        guard let index = KeyDigest.match(presented, in: credentialDigests) else {
            return .refused(GatewayError.authentication("Incorrect API key provided."))
        }
        return .identified(identities[index])
    }

    public func describe(_ identity: CallerIdentity) -> String { "The key `\(identity.name)`" }
}
