/// A caller's own policy for the guardrail plugins, by plugin name: `false` switches that
/// guardrail off for the caller, `true` keeps the manifest's config, and an object tunes it
/// (each plugin says what its object may hold). The Kernel only carries it; an authenticator
/// fills it (`api-key-auth` from `keys[].guardrails`), and a key store can fill the same map from
/// a column of JSON, so a support bot and an internal tool behind one gateway get different rules.
public struct GuardrailOverrides: Sendable, Equatable {
    public private(set) var byPlugin: [String: JSON]

    public static let none = GuardrailOverrides()

    public init(_ byPlugin: [String: JSON] = [:]) { self.byPlugin = byPlugin }

    /// From a JSON object of plugin name to `false`, `true` or an object; other values are
    /// dropped (the authenticator checks them when it loads its keys).
    public init(json: JSON) {
        var byPlugin: [String: JSON] = [:]
        for (plugin, value) in json.members where value.bool != nil || value.isObject { byPlugin[plugin] = value }
        self.byPlugin = byPlugin
    }

    /// What is wrong with a policy object an authenticator was given, as a path within it and a
    /// message; nil when it has the right shape.
    public static func problem(in json: JSON) -> (path: String?, message: String)? {
        guard json.isObject else { return (nil, "expected an object of plugin name to false, true or an object") }
        for (plugin, value) in json.members where value.bool == nil && !value.isObject {
            return (plugin, "expected false (off for this caller), true or an object of settings")
        }
        return nil
    }

    public var isEmpty: Bool { byPlugin.isEmpty }

    /// Whether the caller has this guardrail switched off.
    public func isDisabled(_ plugin: String) -> Bool { byPlugin[plugin]?.bool == false }

    /// The caller's settings for `plugin`, when it gave an object.
    public subscript(plugin: String) -> JSON? {
        guard let value = byPlugin[plugin], value.isObject else { return nil }
        return value
    }
}
