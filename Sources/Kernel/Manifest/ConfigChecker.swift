/// Checks a JSON value against a `ConfigType`, filling defaults and resolving secret references.
/// It collects every error rather than stopping at the first, so `sluice check` shows them all.
struct ConfigChecker {
    let environment: [String: String]
    /// Where relative `{"file": …}` references are looked up: the manifest's folder.
    let baseDirectory: String
    private(set) var errors: [ManifestError] = []
    /// Things left out on purpose (optional elements whose secrets are missing).
    private(set) var warnings: [ManifestError] = []
    /// The reference each resolved value came from, by path (files made absolute).
    private(set) var secretReferences: [String: SecretReference] = [:]

    init(environment: [String: String], baseDirectory: String = "") {
        self.environment = environment
        self.baseDirectory = baseDirectory
    }

    /// Returns the checked value (defaults filled, references resolved), or `nil` when wrong.
    mutating func check(_ value: JSON, as type: ConfigType, at path: String) -> JSON? {
        if case .string = type, value.isObject { return resolve(value, at: path, secret: false) }
        if case .secret = type, value.isObject { return resolve(value, at: path, secret: true) }
        switch type {
        case .string, .secret:
            if value.string != nil { return value }
        case .integer(let min, let max):
            if let int = value.int, min.map({ int >= $0 }) ?? true, max.map({ int <= $0 }) ?? true { return JSON(int) }
        case .number(let min, let max):
            if let double = value.double, min.map({ double >= $0 }) ?? true, max.map({ double <= $0 }) ?? true { return value }
        case .boolean:
            if value.bool != nil { return value }
        case .choice(let options):
            if let string = value.string, options.contains(string) { return value }
        case .any:
            return value
        case .array(let elementType):
            guard value.isArray else { break }
            var result = JSON.array()
            var ok = true
            for (index, element) in value.elements.enumerated() {
                let errorCount = errors.count
                if let checked = check(element, as: elementType, at: JSONPath.element(path, index)) {
                    result.append(checked)
                } else if leaveOutIfOptional(element, since: errorCount) == nil {
                    ok = false
                }
            }
            return ok ? result : nil
        case .map(let valueType):
            guard value.isObject else { break }
            var result = JSON.object()
            var ok = true
            for (key, member) in value.members {
                if let checked = check(member, as: valueType, at: JSONPath.member(path, key)) {
                    result[key] = checked
                } else {
                    ok = false
                }
            }
            return ok ? result : nil
        case .object(let schema):
            guard value.isObject else { break }
            return check(value, against: schema, at: path)
        }
        fail(path, "expected \(type.expectation), got \(Self.describe(value, secret: { if case .secret = type { true } else { false } }()))")
        return nil
    }

    /// Checks an object's members against a schema: unknown keys, required fields, defaults.
    mutating func check(_ object: JSON, against schema: ConfigSchema, at path: String) -> JSON? {
        let errorCount = errors.count
        var result = JSON.object()
        let known = Set(schema.fields.map(\.name))
        for key in object.keys where !known.contains(key) && !schema.allowsUnknownKeys {
            let hint = Suggestions.closest(to: key, among: schema.fields.map(\.name)).first.map { "; did you mean \"\($0)\"?" } ?? ""
            let valid = schema.fields.isEmpty ? "this plugin takes no config" : "known keys: " + schema.fields.map(\.name).joined(separator: ", ")
            fail(JSONPath.member(path, key), "unknown key\(hint) (\(valid))")
        }
        if schema.allowsUnknownKeys {
            for (key, value) in object.members where !known.contains(key) { result[key] = value }
        }
        for field in schema.fields {
            let fieldPath = JSONPath.member(path, field.name)
            if let value = object[field.name], !value.isNull {
                if let checked = check(value, as: field.type, at: fieldPath) { result[field.name] = checked }
            } else if let defaultValue = field.defaultValue {
                if case .object(let nested) = field.type, let filled = check(defaultValue, against: nested, at: fieldPath) {
                    result[field.name] = filled
                } else {
                    result[field.name] = defaultValue
                }
            } else if field.isRequired {
                fail(fieldPath, "is required: \(field.type.expectation) (\(field.description))")
            }
        }
        return errors.count == errorCount ? result : nil
    }

    mutating func fail(_ path: String, _ message: String, isMissingSecret: Bool = false) {
        errors.append(ManifestError(path: path, message, isMissingSecret: isMissingSecret))
    }

    /// An element marked `"optional": true` whose only problems are missing secrets is left out:
    /// its errors become warnings. Returns why it was left out, or `nil` when it was not.
    mutating func leaveOutIfOptional(_ element: JSON, since errorCount: Int) -> String? {
        let new = errors[errorCount...]
        guard element["optional"]?.bool == true, let reason = new.first?.message, new.allSatisfy(\.isMissingSecret) else { return nil }
        warnings += new.map { ManifestError(path: $0.path, "left out (optional): \($0.message)") }
        errors.removeSubrange(errorCount...)
        return reason
    }

    private mutating func resolve(_ value: JSON, at path: String, secret: Bool) -> JSON? {
        guard let reference = SecretReference(value) else {
            fail(path, "expected a string or a secret reference ({\"env\": \"NAME\"}, {\"file\": \"/path\"} or {\"credential\": \"NAME\"}), got \(Self.describe(value, secret: secret))")
            return nil
        }
        switch reference.resolve(environment: environment, baseDirectory: baseDirectory) {
        case .success(let string):
            secretReferences[path] = reference.located(in: baseDirectory)
            return JSON(string)
        case .failure(let failure):
            fail(path, failure.message, isMissingSecret: true)
            return nil
        }
    }

    /// A short rendering of a wrong value for an error message; secrets are never shown.
    static func describe(_ value: JSON, secret: Bool) -> String {
        switch value.kind {
        case .object: return "an object"
        case .array: return "an array"
        case .null: return "null"
        case .string where secret: return "a string"
        default:
            let text = value.description
            return text.count > 40 ? String(text.prefix(37)) + "..." : text
        }
    }
}
