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
