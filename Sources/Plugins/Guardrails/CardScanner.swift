/// Payment card numbers: 13 to 19 digits, grouped by single spaces or dashes (one kind per
/// number) or not at all, of a known card network's prefix, and passing the Luhn check. A
/// digit run that fails any of these (an order number, a mistyped card) is left alone.
enum CardScanner {
    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        var digits: [UInt8] = []
        digits.reserveCapacity(19)
        while i < n {
            guard ByteClass.isDigit(text[i]), !ByteClass.isWord(ByteClass.before(text, i)), ByteClass.before(text, i) != 46,
                  ByteClass.before(text, i) != 45 else {
                i += 1
                continue
            }
            digits.removeAll(keepingCapacity: true)
            var separator: UInt8 = 0
            var j = i, end = i, consistent = true
            while j < n {
                let b = text[j]
                if ByteClass.isDigit(b) {
                    digits.append(b &- 48)
                    j += 1
                    end = j
                } else if (b == 32 || b == 45), ByteClass.isDigit(ByteClass.at(text, j + 1)), digits.count < 19 {
                    if separator == 0 { separator = b } else if separator != b { consistent = false }
                    j += 1
                } else {
                    break
                }
                if digits.count > 19 { break }
            }
            var skip = end
            while skip < n, ByteClass.isDigit(text[skip]) { skip += 1 }
            if skip == end, consistent, (13...19).contains(digits.count), !ByteClass.isWord(ByteClass.at(text, end)),
               knownNetwork(digits), luhn(digits) {
                matches.append(PIIMatch(start: i, end: end, detector: .card))
            }
            i = max(skip, i + 1)
        }
    }

    static func luhn(_ digits: [UInt8]) -> Bool {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            var d = Int(digit)
            if offset % 2 == 1 {
                d *= 2
                if d > 9 { d -= 9 }
            }
            sum += d
        }
        return sum % 10 == 0
    }

    /// Visa, Mastercard, American Express, Discover, JCB, Diners Club, UnionPay, Maestro.
    static func knownNetwork(_ d: [UInt8]) -> Bool {
        func prefix(_ count: Int) -> Int { d.prefix(count).reduce(0) { $0 * 10 + Int($1) } }
        switch d[0] {
        case 4: return true
        case 5: return (51...55).contains(prefix(2)) || [50, 56, 57, 58].contains(prefix(2))
        case 2: return (2221...2720).contains(prefix(4))
        case 3: return [34, 37, 36, 38, 39].contains(prefix(2)) || (300...305).contains(prefix(3)) || (3528...3589).contains(prefix(4))
        case 6: return prefix(4) == 6011 || prefix(2) == 65 || (644...649).contains(prefix(3)) || prefix(2) == 62 || prefix(2) == 67
        default: return false
        }
    }
}
