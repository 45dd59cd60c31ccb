import Crypto
import Foundation
import Kernel
import NIOHTTP1

/// Authenticates callers by API key. Keys are held only as SHA-256 digests and compared in
/// constant time; a key may be limited to some public models. The key's `name` (never the key)
/// becomes the caller identity for later plugins, and the client's key headers are removed so
/// that they can never reach a provider.
public struct APIKeyAuth: Middleware {
    public static let name = "api-key-auth"
    public static let summary = "requires a known API key (Authorization: Bearer, x-api-key or api-key)"
    public static let configSchema = ConfigSchema([
        ConfigField("keys", .array(.object(ConfigSchema([
            ConfigField("name", .string, required: true, "who holds the key; shown in logs and metrics"),
            ConfigField("key", .secret, "the key itself, best as {\"env\": \"NAME\"}, {\"file\": \"/path\"} or {\"credential\": \"NAME\"}"),
            ConfigField("key_sha256", .string, "instead of key: the hex SHA-256 of the key (`printf %s KEY | sha256sum`)"),
            ConfigField("models", .array(.string), default: ["*"], "public models this key may use; \"*\" for all"),
            ConfigField("optional", .boolean, default: false, "true: leave this key out (with a warning) when its secret is missing"),
        ]))), required: true, "the accepted keys"),
    ])

    struct Key: Sendable {
        var digest: [UInt8]
        var identity: CallerIdentity
    }

    let keys: [Key]

    public init(config: PluginConfig, context: PluginContext) throws {
        var keys: [Key] = []
        var names: Set<String> = []
        for entry in config.objects("keys") {
            let name = entry.string("name") ?? ""
            guard names.insert(name).inserted else { throw entry.error("name", "another key is already named \"\(name)\"") }
            let digest: [UInt8]
            switch (entry.string("key"), entry.string("key_sha256")) {
            case (let key?, nil):
                guard !key.isEmpty else { throw entry.error("key", "must not be empty") }
                digest = Array(SHA256.hash(data: Array(key.utf8)))
            case (nil, let hex?):
                guard let bytes = Hex.decode(hex), bytes.count == 32 else {
                    throw entry.error("key_sha256", "expected 64 hexadecimal characters (the output of sha256sum)")
                }
                digest = bytes
            case (nil, nil):
                throw entry.error(nil, "needs either \"key\" or \"key_sha256\"")
            case (.some, .some):
                throw entry.error(nil, "give either \"key\" or \"key_sha256\", not both")
            }
            let models = entry.strings("models")
            keys.append(Key(digest: digest, identity: CallerIdentity(name: name, allowedModels: models.contains("*") ? nil : Set(models))))
        }
        if keys.isEmpty {
            context.logger.warning("api-key-auth has no usable keys: every request will be refused with 401",
                                   metadata: ["path": .string(config.path)])
        }
        self.keys = keys
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard let presented = Self.presentedKey(in: request.headers) else {
            throw GatewayError(.unauthorized, type: "authentication_error",
                               "You didn't provide an API key. Send it as `Authorization: Bearer KEY` (or in an `x-api-key` header).",
                               code: "missing_api_key")
        }
        guard let identity = identify(presented) else {
            throw GatewayError.authentication("Incorrect API key provided.")
        }
        return try await Admission.admit(identity, describedAs: "The key `\(identity.name)`", request, next: next)
    }

    /// The key from the first of `Authorization: Bearer`, `x-api-key` or `api-key`.
    static func presentedKey(in headers: HTTPHeaders) -> String? {
        if let authorization = headers.first(name: "authorization"), let key = bearerToken(authorization) { return key }
        for name in ["x-api-key", "api-key"] {
            if let key = headers.first(name: name), !key.isEmpty { return key }
        }
        return nil
    }

    /// `KEY` from `Bearer KEY` (the scheme in any case), without Foundation on the hot path.
    static func bearerToken(_ value: String) -> String? {
        let utf8 = value.utf8
        guard utf8.count > 7, utf8.prefix(6).map({ $0 | 0x20 }).elementsEqual("bearer".utf8),
              utf8.dropFirst(6).first == UInt8(ascii: " ") else { return nil }
        let key = utf8.dropFirst(7).drop { $0 == UInt8(ascii: " ") }
        let trimmed = key.reversed().drop { $0 == UInt8(ascii: " ") }.count
        let token = String(decoding: key.prefix(trimmed), as: UTF8.self)
        return token.isEmpty ? nil : token
    }

    /// Compares the presented key's digest with every known digest, without stopping early,
    /// so that timing tells nothing about which key (or how much of one) matched.
    func identify(_ presented: String) -> CallerIdentity? {
        let digest = Array(SHA256.hash(data: Array(presented.utf8)))
        var match: Int?
        for (index, key) in keys.enumerated() {
            var difference: UInt8 = 0
            for i in 0..<32 { difference |= digest[i] ^ key.digest[i] }
            if difference == 0 { match = index }
        }
        return match.map { keys[$0].identity }
    }
}
