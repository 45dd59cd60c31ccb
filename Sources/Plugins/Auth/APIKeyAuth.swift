import Crypto
import Foundation
import Kernel
import NIOHTTP1

/// Authenticates callers by API key. Keys are held only as SHA-256 digests and compared in
/// constant time; a key may be limited to some public models. The key's `name` (never the key)
/// becomes the caller identity for later plugins. Its whole check runs on the request's head,
/// before the body is read (`Authenticator`).
///
/// With `managed`, it also accepts the keys kept in the state database (created through
/// `admin-api` or `sluice keys`), from a snapshot refreshed every second (`ManagedKeyDirectory`):
/// a request never waits for the database, and a revoked key is refused everywhere within ~2 s.
public struct APIKeyAuth: Authenticator {
    public static let name = "api-key-auth"
    public static let summary = "requires a known API key (Authorization: Bearer, x-api-key or api-key)"

    public struct Settings: PluginSettings {
        @Setting("keys", required: true, "the accepted keys (may be empty with managed)") public var keys: [ClientKey] = []
        @Setting("managed", "also accept the managed keys kept in the manifest's database (admin-api, sluice keys)")
        public var managed = false
        public init() {}
    }

    public struct ClientKey: PluginSettings {
        public var key = KeySettings()
        @Setting("models", "public models this key may use; \"*\" for all") public var models = ["*"]
        @Setting("mcp_tools", "MCP tools this key may list and call, as globs over {server}__{tool} (\"docs__*\"); \"*\" for all")
        public var mcpTools = ["*"]
        @Setting("optional", "true: leave this key out (with a warning) when its secret is missing") public var optional = false
        @Setting("guardrails", "this key's own guardrail policy: plugin name to false (off for this key) or an object of that plugin's per-key settings, e.g. {\"pii\": {\"email\": \"log\"}, \"content-filter\": false}")
        public var guardrails: AnyJSON?
        public init() {}
    }

    public let credentialDigests: [KeyDigest]
    let identities: [CallerIdentity]
    let managedKeys: ManagedKeyDirectory?

    public init(settings: Settings, context: PluginContext) throws {
        var digests: [KeyDigest] = []
        var identities: [CallerIdentity] = []
        var names: Set<String> = []
        for (index, entry) in settings.keys.enumerated() {
            let key: NamedKey
            do { key = try entry.key.named() } catch {
                throw context.configError("keys[\(index)]" + (error.field.map { ".\($0)" } ?? ""), error.message)
            }
            guard names.insert(key.name).inserted else {
                throw context.configError("keys[\(index)].name", "another key is already named \"\(key.name)\"")
            }
            let guardrails = entry.guardrails?.value ?? .object()
            if let problem = GuardrailOverrides.problem(in: guardrails) {
                throw context.configError("keys[\(index)].guardrails" + (problem.path.map { ".\($0)" } ?? ""), problem.message)
            }
            digests.append(key.digest)
            identities.append(CallerIdentity(name: key.name, allowedModels: entry.models.contains("*") ? nil : Set(entry.models),
                                             allowedTools: entry.mcpTools.contains("*") ? nil : entry.mcpTools.map(ToolPattern.init),
                                             guardrails: GuardrailOverrides(json: guardrails)))
        }
        if settings.managed {
            let database = try context.requireDatabase(for: "managed", "managed keys")
            managedKeys = ManagedKeyDirectory(database: database, background: context.background, logger: context.logger)
        } else {
            managedKeys = nil
        }
        if digests.isEmpty, !settings.managed {
            context.logger.warning("api-key-auth has no usable keys: every request will be refused with 401",
                                   metadata: ["path": .string(context.configPath)])
        }
        credentialDigests = digests
        self.identities = identities
    }

    public func start() async throws { try await managedKeys?.start() }
    public func shutdown() async { await managedKeys?.stop() }

    public func screen(_ headers: HTTPHeaders) -> AuthVerdict {
        guard let presented = headers.presentedKey else {
            return .refused(GatewayError(.unauthorized, type: "authentication_error",
                                         "You didn't provide an API key. Send it as `Authorization: Bearer KEY` (or in an `x-api-key` header).",
                                         code: "missing_api_key"))
        }
        if let index = KeyDigest.match(presented, in: credentialDigests) { return .identified(identities[index]) }
        // A dictionary lookup of the digest: timing can tell nothing of a SHA-256 preimage.
        if let managedKeys, let found = managedKeys.lookup(KeyDigest(of: presented)) {
            let key = found.key, now = WallClock.milliseconds()
            if found.isPrevious, now >= key.previousValidUntilMs ?? 0 {
                return .refused(GatewayError.authentication("This API key was rotated and its grace period is over; use the new key."))
            }
            guard !key.disabled else { return .refused(GatewayError.authentication("This API key is disabled.")) }
            guard key.isUsable(atMs: now) else { return .refused(GatewayError.authentication("This API key has expired.")) }
            return .identified(CallerIdentity(name: key.name, allowedModels: key.allowedModels, team: key.team))
        }
        return .refused(GatewayError.authentication("Incorrect API key provided."))
    }

    public func describe(_ identity: CallerIdentity) -> String { "The key `\(identity.name)`" }
}
