/// A plugin's config as a typed value, declared once. Each stored property is a `@Setting` that
/// names its manifest key, its type (when the Swift type alone does not say it: a secret, a
/// choice, bounds), its default (the property's initial value) and a one-line description. The
/// schema (`sluice plugins`, `sluice schema`, docs/MANIFEST.md, the checks at start) and the
/// decoding both come from that one declaration, as Caddy's JSON-tagged module structs do:
///
/// ```swift
/// public struct Settings: PluginSettings {
///     @Setting("retries", .nonNegativeInteger, "retries of a failed attempt") public var retries = 2
///     @Setting("api_key", .secret, "the provider's key") public var apiKey: String?
///     public init() {}
/// }
/// ```
///
/// A config reaches `decode` already checked against the schema (types, bounds, unknown keys)
/// with its defaults filled in and its secret references resolved.
public protocol PluginSettings: SettingValue {
    /// Every setting at its default.
    init()
}

extension PluginSettings {
    /// The schema, from the `@Setting`s of a default value, in declaration order.
    public static var schema: ConfigSchema { ConfigSchema(declarations(of: Self()).map(\.field)) }

    public static var configType: ConfigType { .object(schema) }

    /// The settings as a manifest would write them.
    public var json: JSON {
        JSON(object: Self.declarations(of: self).compactMap { declaration in declaration.currentJSON.map { (declaration.field.name, $0) } })
    }

    /// The settings a checked config holds.
    public static func decode(_ config: PluginConfig) throws -> Self {
        let settings = Self()
        for declaration in declarations(of: settings) {
            declaration.load(config[declaration.field.name], path: JSONPath.member(config.path, declaration.field.name))
        }
        return settings
    }

    public static func load(_ json: JSON, path: String) throws -> Self {
        try decode(PluginConfig(json: json, path: path))
    }

    /// The `@Setting`s of `settings`, in declaration order. A stored property that is itself
    /// `PluginSettings` (not a `@Setting`) adds its settings at this level: settings several
    /// plugins share are declared once and included, e.g. `var limits = AnswerLimits()`.
    fileprivate static func declarations(of settings: some PluginSettings) -> [any SettingDeclaration] {
        Mirror(reflecting: settings).children.flatMap { child -> [any SettingDeclaration] in
            switch child.value {
            case let declaration as any SettingDeclaration: [declaration]
            case let included as any PluginSettings: declarations(of: included)
            default: []
            }
        }
    }
}

/// One setting of a `PluginSettings` value: its manifest key, type, default and description.
///
/// A setting is written once, when its settings are decoded from a checked config, and only read
/// afterwards; its value lives in a box so that `decode` can fill the settings it made.
@propertyWrapper
public struct Setting<Value: SettingValue>: Sendable {
    private let box: SettingBox<Value>
    let field: ConfigField

    public var wrappedValue: Value { box.value }

    /// The default is the property's initial value; `type` narrows `Value`'s own (a secret, a
    /// choice, bounds).
    public init(wrappedValue: Value, _ key: String, _ type: ConfigType, required: Bool = false, _ description: String) {
        box = SettingBox(wrappedValue)
        field = ConfigField(key, type, required: required, default: required ? nil : wrappedValue.settingJSON, description)
    }

    public init(wrappedValue: Value, _ key: String, required: Bool = false, _ description: String) {
        self.init(wrappedValue: wrappedValue, key, Value.configType, required: required, description)
    }
}

extension Setting where Value: ExpressibleByNilLiteral {
    /// An optional setting: absent unless the config gives it.
    public init(_ key: String, _ type: ConfigType, _ description: String) {
        self.init(wrappedValue: nil, key, type, description)
    }

    public init(_ key: String, _ description: String) {
        self.init(wrappedValue: nil, key, Value.configType, description)
    }
}

private final class SettingBox<Value: Sendable>: @unchecked Sendable {
    // Written once by `PluginSettings.decode`, before the settings are shared; read-only after.
    var value: Value
    init(_ value: Value) { self.value = value }
}

protocol SettingDeclaration {
    var field: ConfigField { get }
    var currentJSON: JSON? { get }
    func load(_ json: JSON?, path: String)
}

extension Setting: SettingDeclaration {
    var currentJSON: JSON? { wrappedValue.settingJSON }

    /// Absent, or of a type the schema check has already reported: the default stands (the
    /// manifest is refused anyway, but reading on finds its other errors).
    func load(_ json: JSON?, path: String) {
        guard let json, !json.isNull, let value = try? Value.load(json, path: path) else { return }
        box.value = value
    }
}

/// A type a setting may have: how it reads from checked JSON and how its value is written
/// (the default the schema shows).
public protocol SettingValue: Sendable {
    /// The type the schema checks, unless the `@Setting` names a narrower one.
    static var configType: ConfigType { get }
    /// The value of checked JSON (of `configType`); `path` names it in an error.
    static func load(_ json: JSON, path: String) throws -> Self
    /// The value as JSON; `nil` for none (an absent optional).
    var settingJSON: JSON? { get }
}

extension SettingValue where Self: PluginSettings {
    public var settingJSON: JSON? { json }
}

struct SettingTypeError: Error {}

extension Int: SettingValue {
    public static var configType: ConfigType { .integer() }
    public static func load(_ json: JSON, path: String) throws -> Int { try json.int.orThrow() }
    public var settingJSON: JSON? { JSON(self) }
}

extension Double: SettingValue {
    public static var configType: ConfigType { .number() }
    public static func load(_ json: JSON, path: String) throws -> Double { try json.double.orThrow() }
    /// A whole number as an integer: admins write `30`, not `30.0`.
    public var settingJSON: JSON? { rounded() == self && abs(self) < 1e15 ? JSON(Int(self)) : JSON(self) }
}

extension Bool: SettingValue {
    public static var configType: ConfigType { .boolean }
    public static func load(_ json: JSON, path: String) throws -> Bool { try json.bool.orThrow() }
    public var settingJSON: JSON? { JSON(self) }
}

extension String: SettingValue {
    public static var configType: ConfigType { .string }
    public static func load(_ json: JSON, path: String) throws -> String { try json.string.orThrow() }
    public var settingJSON: JSON? { JSON(self) }
}

extension Array: SettingValue where Element: SettingValue {
    public static var configType: ConfigType { .array(Element.configType) }
    public static func load(_ json: JSON, path: String) throws -> [Element] {
        try json.elements.enumerated().map { try Element.load($0.element, path: JSONPath.element(path, $0.offset)) }
    }
    public var settingJSON: JSON? { JSON(array: compactMap(\.settingJSON)) }
}

extension Optional: SettingValue where Wrapped: SettingValue {
    public static var configType: ConfigType { Wrapped.configType }
    public static func load(_ json: JSON, path: String) throws -> Wrapped? { try Wrapped.load(json, path: path) }
    public var settingJSON: JSON? { self?.settingJSON }
}

/// An object of string values chosen by the admin (extra headers), in document order.
public struct StringMap: SettingValue, Sequence {
    public var pairs: [(key: String, value: String)]

    public init(_ pairs: [(key: String, value: String)] = []) { self.pairs = pairs }

    public static var configType: ConfigType { .map(.string) }
    public static func load(_ json: JSON, path: String) throws -> StringMap {
        StringMap(json.members.compactMap { member in member.value.string.map { (member.key, $0) } })
    }
    public var settingJSON: JSON? { JSON(object: pairs.map { ($0.key, JSON($0.value)) }) }
    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { pairs.makeIterator() }
}

/// A setting of any JSON value, checked by the plugin itself.
public struct AnyJSON: SettingValue {
    public var value: JSON
    public init(_ value: JSON) { self.value = value }
    public static var configType: ConfigType { .any }
    public static func load(_ json: JSON, path: String) throws -> AnyJSON { AnyJSON(json) }
    public var settingJSON: JSON? { value.isNull ? nil : value }
}

extension Optional {
    fileprivate func orThrow() throws -> Wrapped {
        guard let self else { throw SettingTypeError() }
        return self
    }
}
