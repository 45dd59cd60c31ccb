/// "Did you mean" hints: known names ordered by edit distance to a misspelt one.
enum Suggestions {
    /// Names within a plausible distance of `name`, closest first.
    static func closest(to name: String, among candidates: [String]) -> [String] {
        let limit = max(2, name.count / 3)
        return candidates
            .map { ($0, distance(name, $0)) }
            .filter { $0.1 <= limit || $0.0.hasPrefix(name) || name.hasPrefix($0.0) }
            .sorted { ($0.1, $0.0) < ($1.1, $1.0) }
            .map(\.0)
    }

    /// All candidates, closest first (for "known plugins: …" lists).
    static func ranked(_ name: String, among candidates: [String]) -> [String] {
        candidates.sorted { (distance(name, $0), $0) < (distance(name, $1), $1) }
    }

    /// Damerau–Levenshtein (optimal string alignment) distance, so a swap of two letters counts once.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b.lowercased())
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
