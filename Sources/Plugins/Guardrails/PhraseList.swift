/// Words and phrases matched whole and case-insensitively: `credit card` matches "Credit  card"
/// and "credit card." but not "credit cards" or "discredit card". Text and phrases are split
/// into words (runs of letters and digits, in any script) once; each word of the text is
/// compared only with the phrases that start with it, so the cost is linear in the text.
struct PhraseList: Sendable {
    private let byFirstWord: [String: [[String]]]

    init(_ phrases: [String]) {
        var table: [String: [[String]]] = [:]
        for phrase in phrases {
            let words = Self.words(phrase)
            guard let first = words.first else { continue }
            table[first, default: []].append(words)
        }
        byFirstWord = table
    }

    var isEmpty: Bool { byFirstWord.isEmpty }

    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.lowercased().unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar == "_" {
                current.append(scalar)
            } else if !current.isEmpty {
                words.append(String(current))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }

    func matches(_ text: String) -> Bool {
        guard !byFirstWord.isEmpty else { return false }
        let words = Self.words(text)
        for (index, word) in words.enumerated() {
            guard let candidates = byFirstWord[word] else { continue }
            for phrase in candidates where index + phrase.count <= words.count {
                if phrase.indices.allSatisfy({ words[index + $0] == phrase[$0] }) { return true }
            }
        }
        return false
    }
}
