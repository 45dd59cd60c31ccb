

/// Reads a pattern of `LinearRegex`'s syntax, refusing what a linear-time engine cannot do.
struct RegexParser {
    let pattern: [UInt8]
    var index = 0
    var caseInsensitive = false
    static let maxCount = 1000

    init(_ pattern: [UInt8]) { self.pattern = pattern }

    mutating func parse() throws(RegexError) -> RegexNode {
        if pattern.starts(with: Array("(?i)".utf8)) {
            caseInsensitive = true
            index = 4
        }
        let node = try alternation()
        if index < pattern.count { throw error("unmatched )") }
        return node
    }

    private func error(_ message: String) -> RegexError { RegexError(description: "\(message) at offset \(index)") }
    private var peek: UInt8? { index < pattern.count ? pattern[index] : nil }

    private mutating func alternation() throws(RegexError) -> RegexNode {
        var branches = [try sequence()]
        while peek == UInt8(ascii: "|") {
            index += 1
            branches.append(try sequence())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func sequence() throws(RegexError) -> RegexNode {
        var items: [RegexNode] = []
        while let byte = peek, byte != UInt8(ascii: "|"), byte != UInt8(ascii: ")") {
            var atom = try self.atom()
            while let quantifier = peek, let bounds = try repetition(quantifier) {
                if case .assertion = atom { throw error("nothing to repeat") }
                atom = .repetition(atom, min: bounds.0, max: bounds.1)
                if peek == UInt8(ascii: "?") { index += 1 }  // lazy: the same set of matches
            }
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    /// The bounds of a quantifier at the current byte, consuming it; nil when there is none.
    private mutating func repetition(_ byte: UInt8) throws(RegexError) -> (Int, Int?)? {
        switch byte {
        case UInt8(ascii: "*"): index += 1; return (0, nil)
        case UInt8(ascii: "+"): index += 1; return (1, nil)
        case UInt8(ascii: "?"): index += 1; return (0, 1)
        case UInt8(ascii: "{"):
            let start = index
            index += 1
            guard let min = number() else { index = start; return nil }  // a literal `{`
            var max: Int? = min
            if peek == UInt8(ascii: ",") {
                index += 1
                max = number()
            }
            guard peek == UInt8(ascii: "}") else { throw error("expected } to close the repetition") }
            index += 1
            guard min <= Self.maxCount, (max ?? 0) <= Self.maxCount else { throw error("repetition counts above \(Self.maxCount)") }
            if let max, max < min { throw error("repetition {\(min),\(max)} has its maximum below its minimum") }
            return (min, max)
        default:
            return nil
        }
    }

    private mutating func number() -> Int? {
        var value = 0, digits = 0
        while let byte = peek, byte >= 48, byte <= 57, digits < 5 {
            value = value * 10 + Int(byte - 48)
            digits += 1
            index += 1
        }
        return digits == 0 ? nil : value
    }

    private mutating func atom() throws(RegexError) -> RegexNode {
        let byte = pattern[index]
        index += 1
        switch byte {
        case UInt8(ascii: "("):
            if peek == UInt8(ascii: "?") {
                guard index + 1 < pattern.count, pattern[index + 1] == UInt8(ascii: ":") else {
                    throw error("lookaround and inline flags other than a leading (?i) are not supported")
                }
                index += 2
            }
            let inner = try alternation()
            guard peek == UInt8(ascii: ")") else { throw error("missing )") }
            index += 1
            return inner
        case UInt8(ascii: "["): return .bytes(try characterClass())
        case UInt8(ascii: "."): return .bytes(.anyButNewline)
        case UInt8(ascii: "^"): return .assertion(.textStart)
        case UInt8(ascii: "$"): return .assertion(.textEnd)
        case UInt8(ascii: "\\"): return try escape(inClass: false)
        case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"): throw error("nothing to repeat")
        default: return .bytes(.of(byte))
        }
    }

    private mutating func escape(inClass: Bool) throws(RegexError) -> RegexNode {
        guard let byte = peek else { throw error("trailing \\") }
        index += 1
        switch byte {
        case UInt8(ascii: "d"): return .bytes(.digit)
        case UInt8(ascii: "D"): return .bytes(ByteSet.digit.inverted)
        case UInt8(ascii: "w"): return .bytes(.word)
        case UInt8(ascii: "W"): return .bytes(ByteSet.word.inverted)
        case UInt8(ascii: "s"): return .bytes(.space)
        case UInt8(ascii: "S"): return .bytes(ByteSet.space.inverted)
        case UInt8(ascii: "n"): return .bytes(.of(10))
        case UInt8(ascii: "r"): return .bytes(.of(13))
        case UInt8(ascii: "t"): return .bytes(.of(9))
        case UInt8(ascii: "b") where !inClass: return .assertion(.wordBoundary)
        case UInt8(ascii: "B") where !inClass: return .assertion(.notWordBoundary)
        case UInt8(ascii: "1")...UInt8(ascii: "9"): throw error("backreferences are not supported")
        default:
            if ByteClass.isAlnum(byte) { throw error("unknown escape \\\(Character(UnicodeScalar(byte)))") }
            return .bytes(.of(byte))
        }
    }

    private mutating func characterClass() throws(RegexError) -> ByteSet {
        var set = ByteSet()
        let negated = peek == UInt8(ascii: "^")
        if negated { index += 1 }
        var first = true
        while true {
            guard let byte = peek else { throw error("missing ]") }
            if byte == UInt8(ascii: "]"), !first {
                index += 1
                break
            }
            first = false
            index += 1
            var low = byte
            if byte == UInt8(ascii: "\\") {
                guard case .bytes(let escaped) = try escape(inClass: true) else { throw error("bad escape in class") }
                let single = (0...255).filter { escaped.contains(UInt8($0)) }
                guard single.count == 1 else {
                    set.formUnion(escaped)
                    continue
                }
                low = UInt8(single[0])
            }
            if peek == UInt8(ascii: "-"), index + 1 < pattern.count, pattern[index + 1] != UInt8(ascii: "]") {
                index += 1
                var high = pattern[index]
                index += 1
                if high == UInt8(ascii: "\\") {
                    guard case .bytes(let escaped) = try escape(inClass: true),
                          let only = (0...255).first(where: { escaped.contains(UInt8($0)) }) else { throw error("bad range") }
                    high = UInt8(only)
                }
                guard low <= high else { throw error("range out of order") }
                set.insert(low...high)
            } else {
                set.insert(low)
            }
        }
        return negated ? set.inverted : set
    }
}
