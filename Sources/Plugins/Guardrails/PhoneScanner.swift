/// Phone numbers: E.164 (`+` and 8 to 15 digits, grouped any way) and the common national
/// shapes — North American `(415) 555-0100`, `415-555-0100`, `415.555.0100`, `1-800-555-0100`,
/// and numbers with a leading trunk `0` in groups (`020 7946 0958`, `(020) 7946 0958`, `01 23 45 67 89`,
/// `07700900123`). Left alone: bare runs of digits that do not start with 0 (ids, timestamps),
/// dates, decimals, sums.
enum PhoneScanner {
    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        while i < n {
            let b = text[i]
            let startsHere = (b == 43 && ByteClass.isDigit(ByteClass.at(text, i + 1)))  // +
                || (b == 40 && ByteClass.isDigit(ByteClass.at(text, i + 1)))  // (
                || ByteClass.isDigit(b)
            guard startsHere, startsCleanly(text, i) else {
                i += 1
                continue
            }
            let end = scanCandidate(text, from: i, into: &matches)
            i = max(end, i + 1)
        }
    }

    /// Not inside a word, a number, a path or a sum.
    private static func startsCleanly(_ text: [UInt8], _ i: Int) -> Bool {
        let p = ByteClass.before(text, i)
        if ByteClass.isWord(p) || p == 46 || p == 44 || p == 45 || p == 47 || p == 43 || p == 61 || p == 42 || p == 94 || p == 36 { return false }
        return true
    }

    /// Reads the run of digits and separators at `start`; returns where it ends.
    private static func scanCandidate(_ text: [UInt8], from start: Int, into matches: inout [PIIMatch]) -> Int {
        let n = text.count
        var i = start
        let plus = text[i] == 43
        if plus { i += 1 }
        var groups: [Int] = []  // digits per group
        var separators: [UInt8] = []
        var digits = 0, current = 0, openParen = false, parenGroup = -1
        var end = i
        while i < n {
            let b = text[i]
            if ByteClass.isDigit(b) {
                current += 1
                digits += 1
                i += 1
                end = i
            } else if b == 40, current == 0, !openParen, ByteClass.isDigit(ByteClass.at(text, i + 1)) {  // (
                openParen = true
                parenGroup = groups.count
                i += 1
            } else if b == 41, openParen, current > 0 {  // )
                openParen = false
                groups.append(current)
                current = 0
                separators.append(41)
                i += 1
                end = i
                if ByteClass.at(text, i) == 32 || ByteClass.at(text, i) == 45 { i += 1 }
            } else if (b == 32 || b == 45 || b == 46), current > 0,
                      ByteClass.isDigit(ByteClass.at(text, i + 1)) || ByteClass.at(text, i + 1) == 40 {
                groups.append(current)
                current = 0
                separators.append(b)
                i += 1
            } else {
                break
            }
            if digits > 15 { break }
        }
        if current > 0 { groups.append(current) }
        // Keep eating a longer run of digits so none of it starts another candidate.
        var skip = end
        while skip < n, ByteClass.isDigit(text[skip]) || ((text[skip] == 45 || text[skip] == 46) && ByteClass.isDigit(ByteClass.at(text, skip + 1))) {
            skip += 1
        }
        guard skip == end, !openParen, endsCleanly(text, end) else { return skip }
        let valid = plus ? (8...15).contains(digits) && text[start + 1] != 48
            : national(groups: groups, separators: separators, first: text[firstDigit(text, start)], parenGroup: parenGroup)
        if valid { matches.append(PIIMatch(start: start, end: end, detector: .phone)) }
        return end
    }

    private static func firstDigit(_ text: [UInt8], _ start: Int) -> Int {
        var i = start
        while i < text.count, !ByteClass.isDigit(text[i]) { i += 1 }
        return i
    }

    private static func endsCleanly(_ text: [UInt8], _ end: Int) -> Bool {
        let b = ByteClass.at(text, end)
        if ByteClass.isWord(b) || b == 64 || b == 47 || b == 37 { return false }
        if (b == 46 || b == 44 || b == 58) && ByteClass.isDigit(ByteClass.at(text, end + 1)) { return false }
        return true
    }

    private static func national(groups: [Int], separators: [UInt8], first: UInt8, parenGroup: Int) -> Bool {
        let digits = groups.reduce(0, +)
        guard digits == 10 || digits == 11 else { return false }
        if groups.count == 1 { return first == 48 }  // 0…: a national number written without spaces
        if separators.contains(46) {  // dots only in 3.3.4
            return groups == [3, 3, 4] && separators.allSatisfy { $0 == 46 }
        }
        // North American: [1] 3 3 4, the area code not starting with 0 or 1.
        if groups.suffix(3) == [3, 3, 4], groups.count == 3 || (groups.count == 4 && groups[0] == 1) { return true }
        // A trunk 0 (its area code maybe in parentheses), then groups of 2 to 6 digits.
        if parenGroup > 0 { return false }
        return first == 48 && groups.allSatisfy { (2...6).contains($0) } && Set(separators.filter { $0 != 41 }).count <= 1
    }
}
