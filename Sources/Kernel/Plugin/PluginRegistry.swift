/// The plugin types a gateway knows, by manifest name. Built-ins are registered by
/// `Plugins.Builtins`; a host program registers its own types next to them.
public struct PluginRegistry: Sendable {
    public private(set) var types: [String: any Plugin.Type] = [:]

    public init() {}

    /// Registers a type under its `name`. Two types with one name is a programmer error.
    public mutating func register(_ type: any Plugin.Type) {
        precondition(types[type.name] == nil, "two plugin types are registered as \"\(type.name)\"")
        precondition(type is any Middleware.Type || type is any Provider.Type,
                     "plugin \"\(type.name)\" must conform to Middleware or Provider")
        types[type.name] = type
    }

    public mutating func register(_ types: [any Plugin.Type]) {
        for type in types { register(type) }
    }

    public subscript(name: String) -> (any Plugin.Type)? { types[name] }

    public var middlewareNames: [String] { types.filter { $0.value is any Middleware.Type }.keys.sorted() }
    public var providerNames: [String] { types.filter { $0.value is any Provider.Type }.keys.sorted() }
    /// Every type, sorted by name.
    public var all: [any Plugin.Type] { types.keys.sorted().compactMap { types[$0] } }
}
