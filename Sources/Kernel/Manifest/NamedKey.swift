/// A key with a name, as the manifest lists them (`server.admin_keys`, api-key-auth's `keys`):
/// the key itself (best a secret reference) or its SHA-256, held only as the digest.
public struct NamedKey: Sendable, Equatable {
    public var name: String
    public var digest: KeyDigest

    /// The fields every named key has; a plugin's key list adds its own (models, optional).
    public static let fields = [
        ConfigField("name", .string, required: true, "who holds the key; shown in logs and metrics"),
        ConfigField("key", .secret, "the key itself, best as {\"env\": \"NAME\"}, {\"file\": \"/path\"} or {\"credential\": \"NAME\"}"),
        ConfigField("key_sha256", .string, "instead of key: the hex SHA-256 of the key (`printf %s KEY | sha256sum`)"),
    ]
    public static let schema = ConfigSchema(fields)

    public init(name: String, digest: KeyDigest) {
        self.name = name
        self.digest = digest
    }

    /// From a checked entry; the error names the field at fault (a key within the entry, or nil).
    public init(_ entry: JSON) throws(NamedKeyError) {
        name = entry["name"]?.string ?? ""
        switch (entry["key"]?.string, entry["key_sha256"]?.string) {
        case (let key?, nil):
            guard !key.isEmpty else { throw NamedKeyError(field: "key", message: "must not be empty") }
            digest = KeyDigest(of: key)
        case (nil, let hex?):
            guard let digest = KeyDigest(hex: hex) else {
                throw NamedKeyError(field: "key_sha256", message: "expected 64 hexadecimal characters (the output of sha256sum)")
            }
            self.digest = digest
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
