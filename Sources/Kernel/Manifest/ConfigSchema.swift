/// What a plugin accepts in its `config`: each field with its type, default and a one-line
/// description. It is checked before the plugin is built, and it drives `sluice plugins`.
public struct ConfigSchema: Sendable {
    public var fields: [ConfigField]
    /// Whether keys not listed are errors (they are, unless a schema says otherwise).
    public var allowsUnknownKeys: Bool

    public init(_ fields: [ConfigField], allowsUnknownKeys: Bool = false) {
        self.fields = fields
        self.allowsUnknownKeys = allowsUnknownKeys
    }

    public static let empty = ConfigSchema([])
}

public struct ConfigField: Sendable {
    public var name: String
    public var type: ConfigType
    public var isRequired: Bool
    public var defaultValue: JSON?
    public var description: String

    public init(_ name: String, _ type: ConfigType, required: Bool = false, default defaultValue: JSON? = nil, _ description: String) {
        self.name = name
        self.type = type
        self.isRequired = required
        self.defaultValue = defaultValue
        self.description = description
    }
}

/// The type of a config value. Every string-typed value may instead be a secret reference
/// (`{"env": …}`, `{"file": …}`, `{"credential": …}`), resolved when the manifest is loaded.
public indirect enum ConfigType: Sendable {
    case string
    /// A string that must never be printed (API keys); same references as `.string`.
    case secret
    case integer(min: Int? = nil, max: Int? = nil)
    case number(min: Double? = nil, max: Double? = nil)
    case boolean
    /// One of a fixed set of strings.
    case choice([String])
    case array(ConfigType)
    /// An object whose keys are chosen by the admin (header names, provider names).
    case map(ConfigType)
    case object(ConfigSchema)
    /// Any JSON value, checked by the plugin itself.
    case any

    public static let positiveInteger = ConfigType.integer(min: 1)
    public static let nonNegativeInteger = ConfigType.integer(min: 0)

    /// How the type reads in an error message: "expected …".
    public var expectation: String {
        switch self {
        case .string: "a string"
        case .secret: "a string or a secret reference such as {\"env\": \"NAME\"}"
        case .integer(let min, let max):
            switch (min, max) {
            case (1?, nil): "a positive integer"
            case (0?, nil): "a non-negative integer"
            case (let lo?, let hi?): "an integer from \(lo) to \(hi)"
            case (let lo?, nil): "an integer of at least \(lo)"
            case (nil, let hi?): "an integer of at most \(hi)"
            case (nil, nil): "an integer"
            }
        case .number(let min, let max):
            switch (min, max) {
            case (let lo?, let hi?): "a number from \(lo.formatted) to \(hi.formatted)"
            case (let lo?, nil): lo == 0 ? "a non-negative number" : "a number of at least \(lo.formatted)"
            case (nil, let hi?): "a number of at most \(hi.formatted)"
            case (nil, nil): "a number"
            }
        case .boolean: "true or false"
        case .choice(let options): "one of " + options.map { "\"\($0)\"" }.joined(separator: ", ")
        case .array(let element): "an array of \(element.shortName)"
        case .map(let value): "an object whose values are \(value.shortName)"
        case .object: "an object"
        case .any: "any JSON value"
        }
    }

    /// A short name for `sluice plugins`: `string`, `integer ≥ 1`, `array of string`.
    public var shortName: String {
        switch self {
        case .string: "string"
        case .secret: "secret"
        case .integer(let min, let max):
            "integer" + (min.map { " ≥ \($0)" } ?? "") + (max.map { " ≤ \($0)" } ?? "")
        case .number(let min, let max):
            "number" + (min.map { " ≥ \($0.formatted)" } ?? "") + (max.map { " ≤ \($0.formatted)" } ?? "")
        case .boolean: "boolean"
        case .choice(let options): options.joined(separator: "|")
        case .array(let element): "array of \(element.shortName)"
        case .map(let value): "map of \(value.shortName)"
        case .object: "object"
        case .any: "any"
        }
    }
}

extension Double {
    var formatted: String { rounded() == self && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}
