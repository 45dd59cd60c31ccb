extension Array where Element == JSON {
    /// Appends a turn of `role` holding `items` under `key` (Anthropic's and Converse's
    /// `content`, Gemini's `parts`), merged into the last turn when that one has the same role:
    /// these APIs want roles to alternate, and chat sends several tool results, or a tool result
    /// and the user's words, as messages of their own.
    public mutating func appendTurn(role: String, _ items: [JSON], under key: String = "content") {
        guard !items.isEmpty else { return }
        if let last = indices.last, self[last]["role"]?.string == role, var existing = self[last][key] {
            for item in items { existing.append(item) }
            self[last][key] = existing
        } else {
            append(JSON(object: [("role", JSON(role)), (key, JSON(array: items))]))
        }
    }
}
