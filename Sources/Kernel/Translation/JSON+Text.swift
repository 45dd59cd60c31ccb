
extension JSON {
    /// The text of an OpenAI content value (a string, or an array of parts of which the text ones count).
    public var plainText: String {
        if let string { return string }
        return elements.compactMap { part in part["type"]?.string == "text" ? part["text"]?.string : nil }.joined(separator: "\n")
    }

    /// Characters (Unicode scalars, as `JSONView.textCharacterCount` counts them) of text in a
    /// content value (a string, or parts/blocks with `text` or nested `content`).
    public var textCharacterCount: Int {
        if let string { return string.unicodeScalars.count }
        return elements.reduce(0) { $0 + ($1["text"]?.string?.unicodeScalars.count ?? 0) + ($1["content"]?.textCharacterCount ?? 0) }
    }

    /// Copies `key` from `source` when present and not null.
    mutating func copy(_ key: String, from source: JSON, as newKey: String? = nil) {
        if let value = source[key], !value.isNull { self[newKey ?? key] = value }
    }
}
