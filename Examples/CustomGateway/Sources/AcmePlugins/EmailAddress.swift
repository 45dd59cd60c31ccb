/// A hand-written matcher for `name@domain.tld` (ASCII), enough for the example.
enum EmailAddress {
    /// `text` with every address replaced by `replacement`.
    static func masked(in text: String, with replacement: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "@")) else { return text }
        let characters = Array(text)
        var result = ""
        var copied = 0  // characters[..<copied] are in `result` already
        for at in characters.indices where characters[at] == "@" && at >= copied {
            var start = at, end = at + 1
            while start > copied, isLocal(characters[start - 1]) { start -= 1 }
            while end < characters.count, isDomain(characters[end]) { end += 1 }
            while end > at + 1, characters[end - 1] == "." || characters[end - 1] == "-" { end -= 1 }  // "…@example.com." ends a sentence
            // A name before the "@"; after it a domain with a dot and a top level of two or more letters.
            guard start < at, let dot = characters[(at + 1)..<end].lastIndex(of: "."), dot > at + 1, end - dot > 2,
                  characters[(dot + 1)..<end].allSatisfy(isLetter) else { continue }
            result += String(characters[copied..<start]) + replacement
            copied = end
        }
        return result + String(characters[copied...])
    }

    /// Whether `c` can appear in an address at all: a stream holds back a tail of these.
    static func mayBePart(_ c: Character) -> Bool { c == "@" || isLocal(c) }

    /// The longest address there is (RFC 5321): a longer run of address characters is not one.
    static let maximumLength = 254

    static func isLetter(_ c: Character) -> Bool { c.isASCII && c.isLetter }
    static func isLocal(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || "._%+-".contains(c)) }
    static func isDomain(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-") }
}
