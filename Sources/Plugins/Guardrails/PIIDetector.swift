/// The kinds of personal data and secrets `pii` finds. Each is a hand-written scanner over the
/// text's UTF-8 bytes that moves forward only, so a hostile prompt costs time linear in its
/// length whatever it contains (no backtracking regex ever sees client text).
public enum PIIDetector: String, CaseIterable, Sendable, Comparable {
    case email, phone, card, iban, ssn, ip, secret

    /// The placeholder's label: `[EMAIL_1]`.
    var label: String {
        switch self {
        case .email: "EMAIL"
        case .phone: "PHONE"
        case .card: "CARD"
        case .iban: "IBAN"
        case .ssn: "SSN"
        case .ip: "IP"
        case .secret: "SECRET"
        }
    }

    /// What a refusal calls it (never the value).
    var noun: String {
        switch self {
        case .email: "an e-mail address"
        case .phone: "a phone number"
        case .card: "a payment card number"
        case .iban: "an IBAN"
        case .ssn: "a US social security number"
        case .ip: "an IP address"
        case .secret: "a secret (an API key, token or private key)"
        }
    }

    static func byLabel(_ label: some Sequence<UInt8>) -> PIIDetector? {
        let text = String(decoding: Array(label), as: UTF8.self)
        return allCases.first { $0.label == text }
    }

    /// Overlapping finds keep the one that starts first; at one start, this order decides.
    var precedence: Int {
        switch self {
        case .secret: 0
        case .card: 1
        case .iban: 2
        case .ssn: 3
        case .email: 4
        case .ip: 5
        case .phone: 6
        }
    }

    public static func < (lhs: PIIDetector, rhs: PIIDetector) -> Bool { lhs.rawValue < rhs.rawValue }

    func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        switch self {
        case .email: EmailScanner.scan(text, into: &matches)
        case .phone: PhoneScanner.scan(text, into: &matches)
        case .card: CardScanner.scan(text, into: &matches)
        case .iban: IBANScanner.scan(text, into: &matches)
        case .ssn: SSNScanner.scan(text, into: &matches)
        case .ip: IPAddressScanner.scan(text, into: &matches)
        case .secret: SecretScanner.scan(text, into: &matches)
        }
    }
}

/// One find: a byte range of the scanned text. `open` marks a value that runs to the end of the
/// text without its closing part (a private key whose END line has not arrived): a stream must
/// hold it, or keep swallowing what follows.
struct PIIMatch: Sendable, Equatable {
    var start: Int
    var end: Int
    var detector: PIIDetector
    var open = false
    /// A placeholder of this request's, to be replaced by the value it stands for.
    var restores = false
}

enum PIIScan {
    /// Every find of `detectors` in `text`, sorted, without overlaps.
    static func matches(in text: [UInt8], detectors: [PIIDetector]) -> [PIIMatch] {
        var found: [PIIMatch] = []
        for detector in detectors { detector.scan(text, into: &found) }
        guard found.count > 1 else { return found }
        found.sort { ($0.start, $0.detector.precedence, -$0.end) < ($1.start, $1.detector.precedence, -$1.end) }
        var kept: [PIIMatch] = []
        kept.reserveCapacity(found.count)
        for match in found where kept.last.map({ match.start >= $0.end }) ?? true { kept.append(match) }
        return kept
    }
}

/// Byte classes the scanners share (ASCII; any byte of a multi-byte character counts as a letter,
/// so a value never starts or ends inside a word of another script).
enum ByteClass {
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 48 < 10 }
    @inline(__always) static func isUpper(_ b: UInt8) -> Bool { b &- 65 < 26 }
    @inline(__always) static func isLower(_ b: UInt8) -> Bool { b &- 97 < 26 }
    @inline(__always) static func isAlpha(_ b: UInt8) -> Bool { isUpper(b) || isLower(b) }
    @inline(__always) static func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || isAlpha(b) }
    @inline(__always) static func isHex(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20) &- 97 < 6 }
    /// A letter, digit, `_` or part of a non-ASCII character: what a word is made of.
    @inline(__always) static func isWord(_ b: UInt8) -> Bool { isAlnum(b) || b == 95 || b >= 0x80 }
    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }

    /// The byte before `index`, or a space at the start.
    @inline(__always) static func before(_ text: [UInt8], _ index: Int) -> UInt8 { index > 0 ? text[index - 1] : 32 }
    /// The byte at `index`, or a space past the end.
    @inline(__always) static func at(_ text: [UInt8], _ index: Int) -> UInt8 { index < text.count ? text[index] : 32 }
}
