/// One thing wrong with a manifest: the file, the JSON path inside it, and what would be right.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var path: String
    public var message: String
    /// A secret that could not be read; an element marked `"optional": true` is left out instead.
    public var isMissingSecret: Bool

    public init(file: String = "", path: String, _ message: String, isMissingSecret: Bool = false) {
        self.file = file
        self.path = path
        self.message = message
        self.isMissingSecret = isMissingSecret
    }

    public var description: String {
        let location = path.isEmpty ? "" : "\(path): "
        return file.isEmpty ? "\(location)\(message)" : "\(file): \(location)\(message)"
    }
}

/// Every error found in a manifest; a manifest is refused whole.
public struct ManifestErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ManifestError]
    public init(_ errors: [ManifestError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Builds dotted JSON paths such as `pipeline[3].config.requests_per_minute`.
struct JSONPath {
    static func member(_ base: String, _ key: String) -> String {
        let plain = !key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "$" }
        let part = plain ? key : "[\"\(key)\"]"
        return base.isEmpty ? part : (plain ? "\(base).\(part)" : "\(base)\(part)")
    }
    static func element(_ base: String, _ index: Int) -> String { "\(base)[\(index)]" }
}
