/// Credentials by their published shapes: provider API keys and tokens (a fixed prefix, then a
/// body of a known alphabet and length), JSON web tokens, and PEM private-key blocks. A generic
/// random-looking string is not taken: without a prefix there is no telling a key from a hash.
enum SecretScanner {
    enum Alphabet: Sendable {
        case alnum, upperAlnum, word, token, slack, dotted

        @inline(__always) func contains(_ b: UInt8) -> Bool {
            switch self {
            case .alnum: ByteClass.isAlnum(b)
            case .upperAlnum: ByteClass.isUpper(b) || ByteClass.isDigit(b)
            case .word: ByteClass.isAlnum(b) || b == 95
            case .token: ByteClass.isAlnum(b) || b == 95 || b == 45
            case .slack: ByteClass.isAlnum(b) || b == 45
            case .dotted: ByteClass.isAlnum(b) || b == 95 || b == 45 || b == 46
            }
        }
    }

    struct Rule: Sendable {
        var prefix: [UInt8]
        var body: Alphabet
        var lengths: ClosedRange<Int>
        /// The body must mix letters and digits, as generated keys do (`sk-learn` is a word).
        var mixed = false
        init(_ prefix: String, _ body: Alphabet, _ lengths: ClosedRange<Int>, mixed: Bool = false) {
            self.prefix = Array(prefix.utf8)
            self.body = body
            self.lengths = lengths
            self.mixed = mixed
        }
    }

    /// Longer prefixes first: `sk-ant-` is tried before `sk-`.
    static let rules: [Rule] = [
        Rule("sk-ant-", .token, 32...300),  // Anthropic
        Rule("sk-", .token, 20...300, mixed: true),  // OpenAI (sk-proj-, sk-svcacct-, legacy)
        Rule("AKIA", .upperAlnum, 16...16), Rule("ASIA", .upperAlnum, 16...16),  // AWS access key ids
        Rule("ABIA", .upperAlnum, 16...16), Rule("ACCA", .upperAlnum, 16...16),
        Rule("github_pat_", .word, 22...255),  // GitHub fine-grained
        Rule("ghp_", .alnum, 36...40), Rule("gho_", .alnum, 36...40), Rule("ghu_", .alnum, 36...40),
        Rule("ghs_", .alnum, 36...40), Rule("ghr_", .alnum, 36...40),
        Rule("AIza", .token, 35...35),  // Google API keys
        Rule("ya29.", .token, 20...2048),  // Google OAuth access tokens
        Rule("xoxb-", .slack, 10...255), Rule("xoxp-", .slack, 10...255), Rule("xoxa-", .slack, 10...255),
        Rule("xoxr-", .slack, 10...255), Rule("xoxs-", .slack, 10...255), Rule("xoxe-", .slack, 10...255),
        Rule("sk_live_", .alnum, 16...255), Rule("sk_test_", .alnum, 16...255),  // Stripe
        Rule("rk_live_", .alnum, 16...255), Rule("rk_test_", .alnum, 16...255), Rule("whsec_", .alnum, 24...255),
        Rule("glpat-", .token, 20...64),  // GitLab
        Rule("hf_", .alnum, 30...64, mixed: true),  // Hugging Face
        Rule("npm_", .alnum, 36...36),  // npm
        Rule("SG.", .dotted, 60...80),  // SendGrid
        Rule("AccountKey=", .dotted, 80...100),  // Azure storage connection strings (base64 is checked below)
        Rule("dop_v1_", .alnum, 64...64),  // DigitalOcean
        Rule("shpat_", .alnum, 32...32),  // Shopify
    ]

    /// The rules by the prefix's first byte.
    static let byFirstByte: [[Rule]] = {
        var table = [[Rule]](repeating: [], count: 256)
        for rule in rules { table[Int(rule.prefix[0])].append(rule) }
        return table
    }()

    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        while i < n {
            let b = text[i]
            let candidates = byFirstByte[Int(b)]
            let startsWord = !Alphabet.token.contains(ByteClass.before(text, i))
            if startsWord, b == 101, let end = jwt(text, at: i) {  // e: eyJ…
                matches.append(PIIMatch(start: i, end: end, detector: .secret))
                i = end
                continue
            }
            if b == 45, let found = privateKey(text, at: i) {  // -----BEGIN … PRIVATE KEY-----
                matches.append(found)
                i = found.end
                continue
            }
            guard startsWord, !candidates.isEmpty else { i += 1; continue }
            var advanced = i + 1
            for rule in candidates where hasPrefix(text, rule.prefix, at: i) {
                let bodyStart = i + rule.prefix.count
                var j = bodyStart
                var letters = false, digits = false
                while j < n, rule.body.contains(text[j]) {
                    if ByteClass.isDigit(text[j]) { digits = true } else if ByteClass.isAlpha(text[j]) { letters = true }
                    j += 1
                }
                var end = j
                if rule.prefix.last == 61 { while end < n, text[end] == 61 || text[end] == 43 || text[end] == 47 { end += 1 } }  // base64 tail
                advanced = max(advanced, end)
                if rule.lengths.contains(j - bodyStart), !rule.mixed || (letters && digits) {
                    matches.append(PIIMatch(start: i, end: end, detector: .secret))
                    break
                }
            }
            i = advanced
        }
    }

    @inline(__always) static func hasPrefix(_ text: [UInt8], _ prefix: [UInt8], at i: Int) -> Bool {
        guard i + prefix.count <= text.count else { return false }
        for k in 0..<prefix.count where text[i + k] != prefix[k] { return false }
        return true
    }

    private static let jwtStart = Array("eyJ".utf8)

    /// `eyJ…` `.` `eyJ…` `.` signature: a header and payload that are base64url JSON objects.
    static func jwt(_ text: [UInt8], at i: Int) -> Int? {
        guard hasPrefix(text, jwtStart, at: i) else { return nil }
        func segment(_ start: Int) -> Int {
            var j = start
            while j < text.count, ByteClass.isAlnum(text[j]) || text[j] == 95 || text[j] == 45 { j += 1 }
            return j
        }
        let header = segment(i + 3)
        guard header - i >= 10, ByteClass.at(text, header) == 46, hasPrefix(text, jwtStart, at: header + 1) else { return nil }
        let payload = segment(header + 4)
        guard payload - header >= 10, ByteClass.at(text, payload) == 46 else { return nil }
        return segment(payload + 1)
    }

    private static let beginMarker = Array("-----BEGIN ".utf8)
    private static let keyTrailer = Array("PRIVATE KEY-----".utf8)

    /// A PEM private-key block from its BEGIN line to its END line; without an END line (a cut
    /// or still streaming), to the end of the text, marked open.
    static func privateKey(_ text: [UInt8], at i: Int) -> PIIMatch? {
        guard hasPrefix(text, beginMarker, at: i) else { return nil }
        var j = i + beginMarker.count
        while j < text.count, ByteClass.isUpper(text[j]) || text[j] == 32, j - i < 48 { j += 1 }
        // The run of capitals and spaces stops at the closing dashes; it ends in "PRIVATE KEY".
        guard j - 11 >= i + beginMarker.count, hasPrefix(text, keyTrailer, at: j - 11) else { return nil }
        j += keyTrailer.count - 11
        let bodyStart = j
        guard let close = PrivateKeyEnd.find(in: text, from: bodyStart) else {
            return PIIMatch(start: i, end: text.count, detector: .secret, open: true)
        }
        return PIIMatch(start: i, end: close, detector: .secret)
    }

}

/// The end of a PEM private-key block: the END line's last byte, searched from `start`.
enum PrivateKeyEnd {
    private static let endMarker = Array("-----END ".utf8)
    private static let keyTrailer = Array("PRIVATE KEY-----".utf8)

    static func find(in text: [UInt8], from start: Int) -> Int? {
        var k = start
        while k < text.count {
            if text[k] == 45, SecretScanner.hasPrefix(text, endMarker, at: k) {
                var j = k + endMarker.count
                while j < text.count, ByteClass.isUpper(text[j]) || text[j] == 32, j - k < 48 { j += 1 }
                if j - 11 >= k, SecretScanner.hasPrefix(text, keyTrailer, at: j - 11) { return j - 11 + keyTrailer.count }
                k = j
            } else {
                k += 1
            }
        }
        return nil
    }
}
