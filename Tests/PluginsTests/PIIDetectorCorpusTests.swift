import Testing
@testable import Plugins

/// Each `pii` detector against a corpus of true positives (the value it must find, in a
/// sentence) and near misses (text that looks like one but is not: a failed checksum, an e-mail
/// in code, a phone-like number in a sum). Precision and recall are computed per detector,
/// printed as a table, and held above a floor.
@Suite struct PIIDetectorCorpusTests {
    struct Case {
        var text: String
        /// The value the detector must find; nil: it must find nothing. Some true positives are
        /// known misses (a bare US number, `::1`, a prefix-less AWS secret key), kept so that the
        /// figures say what the detectors do not do.
        var value: String?
    }

    static let githubBody = "16C7e42F292c6912E7710c838347Ae178B4a"  // 36
    static let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END RSA PRIVATE KEY-----"
    static let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

    // Secret-shaped values assembled at run time, so the repository itself holds nothing a key
    // scanner would flag (AWS's documented example key id; a made-up Anthropic key).
    static let anthropicKey = "sk-" + "ant-api03-AbCdEf1234567890AbCdEf1234567890AbCd"
    static let awsKeyID = "AKIA" + "IOSFODNN7EXAMPLE"

    static let corpus: [(PIIDetector, [Case])] = [
        (.email, [
            Case(text: "write to alice@example.com today", value: "alice@example.com"),
            Case(text: "Ask ann.lee+ai@mail.example.co.uk.", value: "ann.lee+ai@mail.example.co.uk"),
            Case(text: "Contact: bob_smith@company.org, thanks", value: "bob_smith@company.org"),
            Case(text: "<j.doe@sub.domain.io>", value: "j.doe@sub.domain.io"),
            Case(text: "mailto:first-last@my-company.de", value: "first-last@my-company.de"),
            Case(text: "\"email\": \"carol99@example.net\"", value: "carol99@example.net"),
            Case(text: "José.Müller@example.de (non-ASCII local part)", value: "José.Müller@example.de"),
            Case(text: "user@localhost is the default", value: nil),
            Case(text: "@Override public void run()", value: nil),
            Case(text: "<img src=\"logo@2x.png\">", value: nil),
            Case(text: "a@b.c is too short", value: nil),
            Case(text: "npm install lodash@4.17.21", value: nil),
            Case(text: "git checkout feature@{upstream}", value: nil),
            Case(text: "@media (max-width: 600px) { }", value: nil),
            Case(text: "name at example dot com", value: nil),
            Case(text: "ssh deploy@server", value: nil),
        ]),
        (.phone, [
            Case(text: "call +1 415 555 0100 now", value: "+1 415 555 0100"),
            Case(text: "London: +44 20 7946 0958.", value: "+44 20 7946 0958"),
            Case(text: "mobile +4915123456789", value: "+4915123456789"),
            Case(text: "office (415) 555-0100", value: "(415) 555-0100"),
            Case(text: "fax 415-555-0100", value: "415-555-0100"),
            Case(text: "415.555.0100 is the desk", value: "415.555.0100"),
            Case(text: "toll free 1-800-555-0199", value: "1-800-555-0199"),
            Case(text: "ring 020 7946 0958 after 5", value: "020 7946 0958"),
            Case(text: "text 07700 900123", value: "07700 900123"),
            Case(text: "Paris 01 23 45 67 89", value: "01 23 45 67 89"),
            Case(text: "tel:+33 1 23 45 67 89", value: "+33 1 23 45 67 89"),
            Case(text: "call +1-415-555-0100", value: "+1-415-555-0100"),
            Case(text: "call 4155550100 (bare US number)", value: "4155550100"),
            Case(text: "London (020) 7946 0958", value: "(020) 7946 0958"),
            Case(text: "3 + 4 = 7", value: nil),
            Case(text: "released 2024-01-15", value: nil),
            Case(text: "x = 12345 * 67890", value: nil),
            Case(text: "pi is 3.14159265358979", value: nil),
            Case(text: "created_at: 1700000000", value: nil),
            Case(text: "at 12:30:45 sharp", value: nil),
            Case(text: "1,234,567,890 rows", value: nil),
            Case(text: "ISBN 978-3-16-148410-0", value: nil),
            Case(text: "2^31 - 1 = 2147483647", value: nil),
            Case(text: "sum(10 20 30 40 50)", value: nil),
            Case(text: "matrix [[1, 2], [3, 4]]", value: nil),
            Case(text: "order 4155550100", value: nil),
        ]),
        (.card, [
            Case(text: "card 4111111111111111 exp 12/29", value: "4111111111111111"),
            Case(text: "pay with 4111 1111 1111 1111", value: "4111 1111 1111 1111"),
            Case(text: "MC 5500-0000-0000-0004", value: "5500-0000-0000-0004"),
            Case(text: "amex 378282246310005", value: "378282246310005"),
            Case(text: "amex 3782 822463 10005", value: "3782 822463 10005"),
            Case(text: "discover 6011000000000004", value: "6011000000000004"),
            Case(text: "jcb 3530111333300000.", value: "3530111333300000"),
            Case(text: "new MC 2223003122003222", value: "2223003122003222"),
            Case(text: "visa 4012888888881881", value: "4012888888881881"),
            Case(text: "dotted 4111.1111.1111.1111", value: "4111.1111.1111.1111"),
            Case(text: "card 4111111111111112 (typo)", value: nil),
            Case(text: "tracking 1234567812345670", value: nil),
            Case(text: "mixed 4111-1111 1111-1111", value: nil),
            Case(text: "epoch ms 1700000000000", value: nil),
            Case(text: "id ID4111111111111111X", value: nil),
            Case(text: "uuid 550e8400-e29b-41d4-a716-446655440000", value: nil),
            Case(text: "5500 0000 0000 0005 fails Luhn", value: nil),
        ]),
        (.iban, [
            Case(text: "IBAN DE89 3704 0044 0532 0130 00 please", value: "DE89 3704 0044 0532 0130 00"),
            Case(text: "to GB82WEST12345698765432.", value: "GB82WEST12345698765432"),
            Case(text: "FR1420041010050500013M02606", value: "FR1420041010050500013M02606"),
            Case(text: "NL91ABNA0417164300 (ABN)", value: "NL91ABNA0417164300"),
            Case(text: "ES9121000418450200051332", value: "ES9121000418450200051332"),
            Case(text: "IT60X0542811101000000123456", value: "IT60X0542811101000000123456"),
            Case(text: "CH9300762011623852957", value: "CH9300762011623852957"),
            Case(text: "BE68 5390 0754 7034", value: "BE68 5390 0754 7034"),
            Case(text: "lower de89370400440532013000", value: "de89370400440532013000"),
            Case(text: "DE89 3704 0044 0532 0130 01", value: nil),
            Case(text: "GB82WEST12345698765433", value: nil),
            Case(text: "XX12345678901234567", value: nil),
            Case(text: "DE12 is a prefix", value: nil),
            Case(text: "SKU AB12CDEF34567890", value: nil),
            Case(text: "hash DE893704004405320130", value: nil),
        ]),
        (.ssn, [
            Case(text: "SSN 123-45-6789", value: "123-45-6789"),
            Case(text: "ssn: 078-05-1120.", value: "078-05-1120"),
            Case(text: "number 219 09 9999 on file", value: "219 09 9999"),
            Case(text: "(SSN 536-22-8726)", value: "536-22-8726"),
            Case(text: "000-12-3456", value: nil),
            Case(text: "666-12-3456", value: nil),
            Case(text: "900-12-3456", value: nil),
            Case(text: "123-00-4567", value: nil),
            Case(text: "123-45-0000", value: nil),
            Case(text: "call 555-123-4567", value: nil),
            Case(text: "date 2023-10-15", value: nil),
            Case(text: "part 123-45-67890", value: nil),
        ]),
        (.ip, [
            Case(text: "server 192.168.1.10 is up", value: "192.168.1.10"),
            Case(text: "ping 8.8.8.8.", value: "8.8.8.8"),
            Case(text: "host=10.0.0.1:8080", value: "10.0.0.1"),
            Case(text: "addr 2001:db8::1 here", value: "2001:db8::1"),
            Case(text: "link fe80::1ff:fe23:4567:890a", value: "fe80::1ff:fe23:4567:890a"),
            Case(text: "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", value: "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
            Case(text: "mapped ::ffff:192.0.2.128", value: "::ffff:192.0.2.128"),
            Case(text: "loopback ::1", value: "::1"),
            Case(text: "256.1.1.1 is not valid", value: nil),
            Case(text: "version 1.2.3", value: nil),
            Case(text: "release 1.2.3.4.5", value: nil),
            Case(text: "192.168.001.001", value: nil),
            Case(text: "at 12:30:45", value: nil),
            Case(text: "std::vector<int> v;", value: nil),
            Case(text: "use a::b;", value: nil),
            Case(text: "mac 00:1A:2B:3C:4D:5E", value: nil),
            Case(text: "pi 3.14", value: nil),
            Case(text: "dead::beef", value: nil),
        ]),
        (.secret, [
            Case(text: "key sk-proj-abc123DEF456ghi789JKL012mno345PQR678 ok", value: "sk-proj-abc123DEF456ghi789JKL012mno345PQR678"),
            Case(text: "ANTHROPIC_API_KEY=" + anthropicKey, value: anthropicKey),
            Case(text: "aws_access_key_id = " + awsKeyID, value: awsKeyID),
            Case(text: "token ghp_\(githubBody)", value: "ghp_\(githubBody)"),
            Case(text: "key=AIzaSyA-1234567890abcdefghijklmnopqrstu", value: "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
            Case(text: "SLACK xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", value: "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
            Case(text: "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", value: "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
            Case(text: "Authorization: Bearer \(jwt)", value: jwt),
            Case(text: "key:\n\(pem)\nend", value: pem),
            Case(text: "gitlab glpat-AbCdEfGh1234567890ab", value: "glpat-AbCdEfGh1234567890ab"),
            Case(text: "hf hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678", value: "hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678"),
            Case(text: "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", value: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            Case(text: "import sklearn; from sk-learn import x", value: nil),
            Case(text: "the task-force met", value: nil),
            Case(text: "sk-1234 is a SKU", value: nil),
            Case(text: "AKIAXYZ short", value: nil),
            Case(text: "ghp_short", value: nil),
            Case(text: "header eyJhbGciOiJIUzI1NiJ9 alone", value: nil),
            Case(text: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----", value: nil),
            Case(text: "sk-this-is-my-sklearn-pipeline-config", value: nil),
            Case(text: "xoxb- missing", value: nil),
            Case(text: "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", value: nil),
        ]),
    ]

    struct Score {
        var truePositives = 0, falsePositives = 0, falseNegatives = 0
        var precision: Double { truePositives + falsePositives == 0 ? 1 : Double(truePositives) / Double(truePositives + falsePositives) }
        var recall: Double { truePositives + falseNegatives == 0 ? 1 : Double(truePositives) / Double(truePositives + falseNegatives) }
    }

    static func score(_ detector: PIIDetector, _ cases: [Case]) -> (Score, [String]) {
        var score = Score()
        var misses: [String] = []
        for item in cases {
            let bytes = Array(item.text.utf8)
            let found = PIIScan.matches(in: bytes, detectors: [detector]).map { String(decoding: bytes[$0.start..<$0.end], as: UTF8.self) }
            if let value = item.value {
                if found.contains(value) { score.truePositives += 1 } else { score.falseNegatives += 1; misses.append("missed: \(item.text)") }
                let extra = found.filter { $0 != value }
                score.falsePositives += extra.count
                misses += extra.map { "extra \($0) in: \(item.text)" }
            } else {
                score.falsePositives += found.count
                misses += found.map { "false positive \($0) in: \(item.text)" }
            }
        }
        return (score, misses)
    }

    @Test func precisionAndRecallPerDetector() {
        var table = "detector  cases  TP  FP  FN  precision  recall\n"
        for (detector, cases) in Self.corpus {
            let (score, misses) = Self.score(detector, cases)
            table += "\(detector.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))  \(String(cases.count).leftPad(5))  "
                + "\(String(score.truePositives).leftPad(2))  \(String(score.falsePositives).leftPad(2))  \(String(score.falseNegatives).leftPad(2))  "
                + "\(String(format2(score.precision)).leftPad(9))  \(format2(score.recall).leftPad(6))\n"
            for miss in misses { table += "    \(miss)\n" }
            #expect(score.precision >= 0.9, "\(detector): precision \(score.precision)")
            #expect(score.recall >= 0.8, "\(detector): recall \(score.recall)")
        }
        print(table)
    }

    /// Every detector together over a text of all the near misses: nothing is found.
    @Test func nearMissesTogetherStayClean() {
        let text = Self.corpus.flatMap { $0.1.filter { $0.value == nil }.map(\.text) }.joined(separator: "\n")
        let bytes = Array(text.utf8)
        let found = PIIScan.matches(in: bytes, detectors: PIIDetector.allCases).map { "\($0.detector): " + String(decoding: bytes[$0.start..<$0.end], as: UTF8.self) }
        #expect(found.count <= 2, "\(found)")
    }
}

private func format2(_ value: Double) -> String { String(Double(Int(value * 1000)) / 1000) }

extension String {
    fileprivate func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
