/// A JSON Schema (draft 2020-12) of the whole manifest, built from the registered plugins'
/// config schemas, so that editors complete and check plugins.json (`sluice schema`).
public enum ManifestSchema {
    public static func generate(for registry: PluginRegistry) -> JSON {
        var top = objectSchema(ManifestReader.schema)
        var providers = JSON.array()
        var middlewares = JSON.array()
        for type in registry.all {
            let isProvider = type is any Provider.Type
            var properties: JSON = ["plugin": ["const": JSON(type.name), "description": JSON(type.summary)],
                                    "config": objectSchema(type.configSchema)]
            var required: JSON = ["plugin"]
            if isProvider {
                properties["optional"] = ["type": "boolean", "default": false,
                                          "description": "true: if a secret is missing, leave this provider out instead of refusing the manifest"]
            } else {
                properties["enabled"] = ["type": "boolean", "default": true, "description": "false skips this entry"]
            }
            if type.configSchema.fields.contains(where: \.isRequired) { required.append("config") }
            let branch: JSON = ["type": "object", "properties": properties, "required": required, "additionalProperties": false]
            if isProvider { providers.append(branch) } else { middlewares.append(branch) }
        }
        top["properties"]?["providers"] = ["type": "object", "description": "upstream providers by name",
                                            "additionalProperties": ["oneOf": providers]]
        top["properties"]?["pipeline"] = ["type": "array", "description": "the stages a request runs through, top to bottom",
                                           "items": ["oneOf": middlewares]]
        var schema: JSON = [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://sluice.dev/schemas/plugins.json",
            "title": "Sluice manifest (plugins.json)",
        ]
        for (key, value) in top.members { schema[key] = value }
        schema["$defs"] = ["secretReference": secretReference]
        return schema
    }

    static let secretReference: JSON = [
        "description": "a secret kept outside the manifest",
        "type": "object",
        "oneOf": [
            ["properties": ["env": ["type": "string", "description": "an environment variable"]], "required": ["env"], "additionalProperties": false],
            ["properties": ["file": ["type": "string", "description": "a file (relative paths: from the manifest's folder)"]],
             "required": ["file"], "additionalProperties": false],
            ["properties": ["credential": ["type": "string", "description": "a systemd LoadCredential= name"]],
             "required": ["credential"], "additionalProperties": false],
        ],
    ]

    static func objectSchema(_ schema: ConfigSchema) -> JSON {
        var properties = JSON.object()
        var required = JSON.array()
        for field in schema.fields {
            var property = typeSchema(field.type)
            property["description"] = JSON(field.description)
            if let value = field.defaultValue { property["default"] = value }
            properties[field.name] = property
            if field.isRequired { required.append(JSON(field.name)) }
        }
        var object: JSON = ["type": "object", "properties": properties, "additionalProperties": JSON(schema.allowsUnknownKeys)]
        if required.count > 0 { object["required"] = required }
        return object
    }

    static func typeSchema(_ type: ConfigType) -> JSON {
        switch type {
        case .string, .secret:
            return ["anyOf": [["type": "string"], ["$ref": "#/$defs/secretReference"]]]
        case .integer(let min, let max):
            var schema: JSON = ["type": "integer"]
            if let min { schema["minimum"] = JSON(min) }
            if let max { schema["maximum"] = JSON(max) }
            return schema
        case .number(let min, let max):
            var schema: JSON = ["type": "number"]
            if let min { schema["minimum"] = JSON(min) }
            if let max { schema["maximum"] = JSON(max) }
            return schema
        case .boolean:
            return ["type": "boolean"]
        case .choice(let options):
            return ["enum": JSON(array: options.map { JSON($0) })]
        case .array(let element):
            return ["type": "array", "items": typeSchema(element)]
        case .map(let value):
            return ["type": "object", "additionalProperties": typeSchema(value)]
        case .object(let schema):
            return objectSchema(schema)
        case .any:
            return .object()
        }
    }
}
