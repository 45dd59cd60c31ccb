import CJSONBudget
import NIOCore
import Testing
@testable import Kernel

/// `JSONScanner` must refuse exactly what jansson refuses for a request body: jansson is the
/// reference each case is checked against.
@Suite struct JSONScannerTests {
    static func jansson(_ bytes: [UInt8]) -> Bool {
        (try? JSON.parseRequest(ByteBuffer(bytes: bytes), memoryBudget: .max)) != nil
    }

    static func scanner(_ bytes: [UInt8]) -> Bool {
        (try? JSONScanner.scan(ByteBuffer(bytes: bytes))) != nil
    }

    static let valid: [String] = [
        #"{}"#, #"[]"#, #" { "a" : [ 1 , 2.5 , -0 , 1e5 , 1E-5 , 0.5e+3 ] , "b" : { } } "#,
        #"{"model":"gpt-4o","messages":[{"role":"user","content":"hi \"there\" \\ \/ \b\f\n\r\t"}],"stream":true}"#,
        #"{"s":"\u00e9\u4e2d\ud83d\ude00 é中😀","n":null,"t":true,"f":false}"#,
        #"{"nul":"a\u0000b"}"#, #"{"max":9223372036854775807,"min":-9223372036854775808}"#,
        #""just a string""#, "42", "null", #"[[[[{"deep":[]}]]]]"#,
        #"{"a\u0062":1,"ac":2}"#, #"{"a\u0062cdefghijklmnop":1,"abcdefghijklmnoq":2}"#,
        "{" + (0..<40).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + "}",
    ]

    static let invalid: [String] = [
        "", "   ", "{", "}", "[1,]", #"{"a":1,}"#, #"{"a" 1}"#, "{'a':1}", #"{"a":1}x"#, #"{"a":1}{}"#,
        "01", "1.", ".5", "-", "1e", "1e+", "+1", "1e400", "-1e400", "99999999999999999999", "-9223372036854775809",
        "tru", "nul", "falsey", #"["\ud800"]"#, #"["\udc00"]"#, #"["\ud800\u0041"]"#, #"["\u12"]"#, #"["\x"]"#,
        #"{"a":1,"a":2}"#, #"{"a":{"k":1,"k":2}}"#, #"{"ab":1,"a\u0062":2}"#, #"{"abcdefghijklmnop":1,"a\u0062cdefghijklmnop":2}"#, "[\"unterminated", #"{"a":}"#, "[,1]",
        "{" + (0..<40).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + #","k7":0}"#,
    ]

    @Test func acceptsWhatJanssonAccepts() throws {
        for text in Self.valid {
            let bytes = Array(text.utf8)
            #expect(Self.jansson(bytes), "jansson refused \(text)")
            #expect(Self.scanner(bytes), "the scanner refused \(text)")
        }
    }

    @Test func refusesWhatJanssonRefuses() {
        var cases = Self.invalid.map { Array($0.utf8) }
        // Control characters and broken UTF-8 inside strings; a NUL byte outside one.
        cases += [[0x22, 0x01, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
                  [0x22, 0xE4, 0xB8, 0x22], [0x22, 0xFF, 0x22], [0x22, 0x80, 0x22], [0x7B, 0x00, 0x7D]]
        for bytes in cases {
            #expect(!Self.jansson(bytes), "jansson accepted \(bytes)")
            #expect(!Self.scanner(bytes), "the scanner accepted \(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test func nestingStopsWhereJanssonsDoes() {
        for depth in [2047, 2048, 2049, 5000] {
            let bytes = Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
            #expect(Self.scanner(bytes) == Self.jansson(bytes), "depth \(depth)")
        }
    }

    /// Thousands of documents one edit away from valid ones, each judged by both.
    @Test func agreesWithJanssonOnMutatedDocuments() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]",:\u0123456789.eE+-tfnrl "ab"#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xA9, 0xED, 0xF0, 0x9F]
        var disagreements: [String] = []
        for seed in Self.valid {
            let original = Array(seed.utf8)
            for _ in 0..<1500 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    let at = Int.random(in: 0...bytes.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0 where at < bytes.count: bytes.remove(at: at)
                    case 1 where at < bytes.count: bytes[at] = alphabet.randomElement(using: &generator)!
                    default: bytes.insert(alphabet.randomElement(using: &generator)!, at: at)
                    }
                }
                // jansson drops a NUL byte that follows a number or a literal (its lexer's
                // one-character push-back); JSON has no such byte outside strings, and the scanner refuses it.
                if Self.scanner(bytes) != Self.jansson(bytes), !(bytes.contains(0) && !Self.scanner(bytes)) {
                    disagreements.append("\(bytes): jansson \(Self.jansson(bytes)), scanner \(Self.scanner(bytes))")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, first: \(disagreements.prefix(5))")
    }

    /// Long ASCII strings are skipped eight bytes at a time: a byte that needs a closer look is
    /// seen wherever it falls in such a word, and at the end of the buffer.
    @Test func aSpecialByteIsSeenAtEveryOffsetOfALongString() {
        let specials: [[UInt8]] = [[0x22], [0x5C, 0x6E], [0x5C, 0x78], [0x5C], [0x00], [0x1F], [0x7F], [0xC3, 0xA9], [0xC3], [0xFF], [0xED, 0xA0, 0x80]]
        for special in specials {
            for offset in 0..<20 {
                for tail in [Array(#""}"#.utf8), Array(#"" , "b": "x"}"#.utf8), []] {
                    var bytes = Array(#"{"a": ""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: offset) + special
                    bytes += Array(repeating: UInt8(ascii: "y"), count: 19 - offset) + tail
                    #expect(Self.scanner(bytes) == Self.jansson(bytes), "\(special) at \(offset), tail \(tail)")
                }
            }
        }
    }

    @Test func errorsNameLineAndColumn() {
        do {
            _ = try JSONScanner.scan(ByteBuffer(string: "{\"a\": 1,\n  \"é\": x}"))
            Issue.record("accepted")
        } catch {
            #expect(error.line == 2)
            #expect(error.column == 8)
            #expect(error.description.hasPrefix("line 2, column 8: "))
        }
    }

    @Test func indexesTopLevelMembersAsJanssonReadsThem() throws {
        let text = #"{ "model" : "a\"b", "messages":[{"model":"inner"}], "n" : -1.5e2 , "a\u0062" : {"x":[]} , "t":true }"#
        let buffer = ByteBuffer(string: text)
        let scan = try JSONScanner.scan(buffer)
        let tree = try JSON.parse(buffer)
        let members = try #require(scan.members)
        #expect(members.members.count == tree.count)
        for member in members.members {
            let key = member.escapedKey ?? String(buffer: buffer.getSlice(at: member.keyRange.lowerBound, length: member.keyRange.count)!)
            let value = try JSON.parse(buffer.getSlice(at: member.valueRange.lowerBound, length: member.valueRange.count)!)
            #expect(tree[key] == value, "\(key)")
        }
        #expect(members.members[3].escapedKey == "ab")
        #expect(buffer.getInteger(at: members.closingBrace, as: UInt8.self) == UInt8(ascii: "}"))
    }

    @Test func theTreeEstimateCoversWhatJanssonAllocates() throws {
        for text in Self.valid + [#"{"messages":[{"role":"user","content":"\#(String(repeating: "long text ", count: 2000))"}]}"#,
                                  "[" + Array(repeating: "{}", count: 5000).joined(separator: ",") + "]",
                                  #"["\#(String(repeating: "x", count: 20_000))", "\#(String(repeating: "y", count: 70_000))"]"#,
                                  "[" + Array(repeating: "true", count: 1000).joined(separator: ",") + "]",
                                  "{" + (0..<3000).map { #""key\#($0)":[\#($0),"v"]"# }.joined(separator: ",") + "}"] {
            let buffer = ByteBuffer(string: text)
            let estimate = try JSONScanner.scan(buffer).estimatedTreeBytes
            _ = try JSON.parseRequest(buffer, memoryBudget: 1 << 40)
            let spent = sluice_json_budget_spent()
            #expect(spent > 0)
            #expect(estimate >= spent, "jansson allocated \(spent), more than the estimate \(estimate), for \(text.prefix(60))")
        }
    }

    @Test func aScanStopsAtItsMemoryBudget() {
        let buffer = ByteBuffer(string: "[" + Array(repeating: "{}", count: 200_000).joined(separator: ",") + "]")
        do {
            _ = try JSONScanner.scan(buffer, memoryBudget: 1 << 20)
            Issue.record("a 1 MiB budget passed 200,000 objects")
        } catch {
            #expect(error.exceededBudget)
        }
        #expect((try? JSONScanner.scan(buffer, memoryBudget: 1 << 30)) != nil)
    }
}
