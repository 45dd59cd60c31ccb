/// A plugin's `config`, already checked against its schema: secret references resolved, so
/// `PluginSettings.decode` reads plain values. Where it sits in the manifest names its errors.
public struct PluginConfig: Sendable {
    public let json: JSON
    /// Where this config sits in the manifest, e.g. `pipeline[2].config`.
    public let path: String

    public init(json: JSON, path: String) {
        self.json = json
        self.path = path
    }

    /// The value at `key`; `nil` when absent or null.
    public subscript(key: String) -> JSON? { json[key].flatMap { $0.isNull ? nil : $0 } }
}
