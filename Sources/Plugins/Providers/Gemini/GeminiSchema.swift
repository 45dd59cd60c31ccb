import Kernel

/// A function's JSON Schema as the subset Gemini's `parameters` accepts (an OpenAPI 3.0 Schema
/// object). Gemini refuses the whole request for a key it does not know (`additionalProperties`,
/// `$schema`, `strict`, `$ref`, …), so only the keys it documents are kept; `type: [T, "null"]`
/// becomes `nullable`, `oneOf` becomes `anyOf` and a string `const` a one-value `enum`.
enum GeminiSchema {
    static let kept: Set<String> = [
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
        "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
        "default", "items", "minimum", "maximum",
    ]
    /// Gemini knows these formats only; it refuses others (`uri`, `email`, …).
    static let formats: Set<String> = ["enum", "date-time", "int32", "int64", "float", "double"]

    /// A tool's `parameters`; `nil` for an object without properties, which Gemini refuses
    /// (a function without parameters is declared without them).
    static func parameters(_ schema: JSON) -> JSON? {
        guard schema.isObject else { return nil }
        if (schema["type"]?.string ?? "object") == "object", (schema["properties"]?.count ?? 0) == 0 { return nil }
        return cleaned(schema)
    }

    static func cleaned(_ schema: JSON) -> JSON {
        guard schema.isObject else { return schema }
        var result = JSON.object()
        for (key, value) in schema.members {
            switch key {
            case "type":
                let types = value.string.map { [$0] } ?? value.elements.compactMap(\.string)
                let concrete = types.filter { $0 != "null" }
                if concrete.count < types.count { result["nullable"] = true }
                if concrete.count == 1 {
                    result["type"] = JSON(concrete[0])
                } else if concrete.count > 1, result["anyOf"] == nil {
                    result["anyOf"] = JSON(array: concrete.map { ["type": JSON($0)] })
                }
            case "properties":
                var properties = JSON.object()
                for (name, property) in value.members { properties[name] = cleaned(property) }
                result["properties"] = properties
            case "items":
                result["items"] = cleaned(value)
            case "anyOf", "oneOf":
                result["anyOf"] = JSON(array: value.elements.map(cleaned))
            case "const":
                if value.string != nil { result["enum"] = [value] }
            case "format":
                if let format = value.string, formats.contains(format) { result["format"] = value }
            default:
                if kept.contains(key) { result[key] = value }
            }
        }
        return result
    }
}
