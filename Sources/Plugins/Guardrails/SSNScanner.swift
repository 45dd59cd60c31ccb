/// US social security numbers written `AAA-GG-SSSS` (or with spaces), with the numbers the
/// Social Security Administration never issues left out: area 000, 666 or 900–999, group 00,
/// serial 0000. Nine bare digits are not taken (too many other numbers look like that).
enum SSNScanner {
    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        while i + 11 <= n {
            let sep = text[i + 3]
            guard sep == 45 || sep == 32, text[i + 6] == sep,
                  digits(text, i, 3), digits(text, i + 4, 2), digits(text, i + 7, 4),
                  !ByteClass.isWord(ByteClass.before(text, i)), ByteClass.before(text, i) != 45,
                  !ByteClass.isWord(ByteClass.at(text, i + 11)), ByteClass.at(text, i + 11) != 45 || !ByteClass.isDigit(ByteClass.at(text, i + 12)) else {
                i += 1
                continue
            }
            let area = number(text, i, 3), group = number(text, i + 4, 2), serial = number(text, i + 7, 4)
            if area != 0, area != 666, area < 900, group != 0, serial != 0 {
                matches.append(PIIMatch(start: i, end: i + 11, detector: .ssn))
                i += 11
            } else {
                i += 1
            }
        }
    }

    private static func digits(_ text: [UInt8], _ start: Int, _ count: Int) -> Bool {
        (start..<(start + count)).allSatisfy { ByteClass.isDigit(text[$0]) }
    }

    private static func number(_ text: [UInt8], _ start: Int, _ count: Int) -> Int {
        (start..<(start + count)).reduce(0) { $0 * 10 + Int(text[$1] - 48) }
    }
}
