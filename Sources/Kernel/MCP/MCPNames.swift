/// How the aggregated `/mcp` names what its servers offer: a tool or prompt `search` of the
/// server `docs` is `docs__search` (the separator is `mcp_name_separator`). Server names may not
/// contain the separator, so the first one splits a name unambiguously.
public struct MCPNames: Sendable {
    public let separator: String

    public init(separator: String) { self.separator = separator }

    public func qualified(server: String, _ name: String) -> String { server + separator + name }

    /// The server and its own name, or `nil` for a name without the separator.
    public func split(_ qualified: String) -> (server: String, name: String)? {
        guard let range = qualified.range(of: separator), range.lowerBound > qualified.startIndex else { return nil }
        return (String(qualified[..<range.lowerBound]), String(qualified[range.upperBound...]))
    }
}

/// A glob over qualified tool names (`{server}__{tool}`): `*` matches any run of characters,
/// `?` one character, everything else itself.
public struct ToolPattern: Sendable, Equatable {
    public let text: String
    private let characters: [Character]

    public init(_ text: String) {
        self.text = text
        characters = Array(text)
    }

    public func matches(_ name: String) -> Bool {
        let subject = Array(name)
        // Iterative matching with one backtrack point (the last `*`): linear in practice, and
        // never exponential however many stars a pattern has.
        var p = 0, s = 0, starP = -1, starS = 0
        while s < subject.count {
            if p < characters.count, characters[p] == "?" || characters[p] == subject[s] {
                p += 1
                s += 1
            } else if p < characters.count, characters[p] == "*" {
                starP = p
                starS = s
                p += 1
            } else if starP >= 0 {
                p = starP + 1
                starS += 1
                s = starS
            } else {
                return false
            }
        }
        while p < characters.count, characters[p] == "*" { p += 1 }
        return p == characters.count
    }
}
