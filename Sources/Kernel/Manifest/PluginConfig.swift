/// A plugin's `config`, already checked against its schema: defaults are filled in and secret
/// references resolved, so a plugin reads plain values and reports only semantic problems.
public struct PluginConfig: Sendable {
    public let json: JSON
    /// Where this config sits in the manifest, e.g. `pipeline[2].config`.
    public let path: String

    public init(json: JSON, path: String) {
        self.json = json
        self.path = path
    }

    public subscript(key: String) -> JSON? { json[key].flatMap { $0.isNull ? nil : $0 } }
    public func string(_ key: String) -> String? { self[key]?.string }
    public func int(_ key: String) -> Int? { self[key]?.int }
    public func double(_ key: String) -> Double? { self[key]?.double }
    public func bool(_ key: String) -> Bool? { self[key]?.bool }
    public func strings(_ key: String) -> [String] { self[key]?.elements.compactMap(\.string) ?? [] }

    /// An array of objects, each as its own config with its own path (for error messages).
    public func objects(_ key: String) -> [PluginConfig] {
        (self[key]?.elements ?? []).enumerated().map {
            PluginConfig(json: $0.element, path: JSONPath.element(JSONPath.member(path, key), $0.offset))
        }
    }

    /// An object of string values (for example extra headers), in document order.
    public func stringMap(_ key: String) -> [(key: String, value: String)] {
        (self[key]?.members ?? []).compactMap { member in member.value.string.map { (member.key, $0) } }
    }

    /// An error about `key` of this config (or the config itself), for a plugin's own checks.
    public func error(_ key: String?, _ message: String) -> ManifestError {
        ManifestError(path: key.map { JSONPath.member(path, $0) } ?? path, message)
    }
}
