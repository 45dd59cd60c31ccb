/// International bank account numbers: a country code, two check digits and the account,
/// written whole or in groups of four, of the length that country's IBANs have, and passing the
/// ISO 7064 mod-97 check. Capital letters only, as IBANs are printed.
enum IBANScanner {
    /// Lengths by country (the IBAN registry).
    static let lengths: [String: Int] = [
        "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28, "CH": 21,
        "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
        "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
        "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
        "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
        "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
        "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    ]

    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        var compact: [UInt8] = []
        compact.reserveCapacity(34)
        while i + 15 <= n {
            guard ByteClass.isUpper(text[i]), ByteClass.isUpper(text[i + 1]), ByteClass.isDigit(text[i + 2]), ByteClass.isDigit(text[i + 3]),
                  !ByteClass.isWord(ByteClass.before(text, i)),
                  let length = lengths[String(decoding: text[i..<(i + 2)], as: UTF8.self)] else {
                i += 1
                continue
            }
            compact.removeAll(keepingCapacity: true)
            var j = i
            while j < n, compact.count < length {
                let b = text[j]
                if ByteClass.isUpper(b) || ByteClass.isDigit(b) {
                    compact.append(b)
                    j += 1
                } else if b == 32, compact.count % 4 == 0, compact.count > 0, j + 1 < n, ByteClass.isAlnum(text[j + 1]) {
                    j += 1  // groups of four
                } else {
                    break
                }
            }
            if compact.count == length, !ByteClass.isWord(ByteClass.at(text, j)), mod97(compact) == 1 {
                matches.append(PIIMatch(start: i, end: j, detector: .iban))
                i = j
            } else {
                i += 2
            }
        }
    }

    /// The account with its first four characters moved to the end, letters as 10…35, modulo 97.
    static func mod97(_ iban: [UInt8]) -> Int {
        var remainder = 0
        for b in iban[4...] + iban[..<4] {
            if ByteClass.isDigit(b) {
                remainder = (remainder * 10 + Int(b - 48)) % 97
            } else {
                remainder = (remainder * 100 + Int(b - 55)) % 97
            }
        }
        return remainder
    }
}
