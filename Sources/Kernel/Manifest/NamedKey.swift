/// A key as the gateway holds it: who holds it, and its digest.
public struct NamedKey: Sendable, Equatable {
    public var name: String
    public var digest: KeyDigest

    public init(name: String, digest: KeyDigest) {
        self.name = name
        self.digest = digest
    }
}

/// A key with a name, as the manifest lists them (`server.admin_keys`, api-key-auth's `keys`):
/// the key itself (best a secret reference) or its SHA-256.
public struct KeySettings: PluginSettings {
    @Setting("name", required: true, "who holds the key; shown in logs and metrics") public var name = ""
    @Setting("key", .secret, "the key itself, best as {\"env\": \"NAME\"}, {\"file\": \"/path\"} or {\"credential\": \"NAME\"}")
    public var key: String?
    @Setting("key_sha256", "instead of key: the hex SHA-256 of the key (`printf %s KEY | sha256sum`)") public var keySHA256: String?

    public init() {}

    /// The key as the gateway holds it; the error names the setting at fault (nil: the entry).
    public func named() throws(NamedKeyError) -> NamedKey {
        switch (key, keySHA256) {
        case (let key?, nil):
            guard !key.isEmpty else { throw NamedKeyError(field: "key", message: "must not be empty") }
            return NamedKey(name: name, digest: KeyDigest(of: key))
        case (nil, let hex?):
            guard let digest = KeyDigest(hex: hex) else {
                throw NamedKeyError(field: "key_sha256", message: "expected 64 hexadecimal characters (the output of sha256sum)")
            }
            return NamedKey(name: name, digest: digest)
        case (nil, nil):
            throw NamedKeyError(field: nil, message: "needs either \"key\" or \"key_sha256\"")
        case (.some, .some):
            throw NamedKeyError(field: nil, message: "give either \"key\" or \"key_sha256\", not both")
        }
    }
}

public struct NamedKeyError: Error, Sendable {
    public var field: String?
    public var message: String
}
