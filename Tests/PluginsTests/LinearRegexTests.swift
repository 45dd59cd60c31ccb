import Testing
@testable import Plugins

/// `LinearRegex`: the syntax subset, what it refuses, and time linear in the text on the
/// patterns that make backtracking engines take exponential time.
@Suite struct LinearRegexTests {
    static func matches(_ pattern: String, _ text: String) throws -> Bool { try LinearRegex(pattern).matches(text) }

    @Test func syntax() throws {
        #expect(try Self.matches("abc", "xxabcxx"))
        #expect(try !Self.matches("abd", "xxabcxx"))
        #expect(try Self.matches("^abc$", "abc"))
        #expect(try !Self.matches("^abc$", "abcd"))
        #expect(try Self.matches("a.c", "abc"))
        #expect(try !Self.matches("a.c", "a\nc"))
        #expect(try Self.matches("[a-c]+x", "bbax"))
        #expect(try !Self.matches("[^a-c]x", "ax"))
        #expect(try Self.matches("colou?r", "color"))
        #expect(try Self.matches("colou?r", "colour"))
        #expect(try Self.matches("ab{2,3}c", "abbc"))
        #expect(try !Self.matches("ab{2,3}c", "abbbbc"))
        #expect(try Self.matches("ab{2,}c", "abbbbbc"))
        #expect(try Self.matches("a{3}", "aaa"))
        #expect(try Self.matches("(cat|dog)s", "hotdogs"))
        #expect(try Self.matches("(?:x|y)z", "yz"))
        #expect(try Self.matches(#"\d{3}-\d{4}"#, "call 555-0100"))
        #expect(try Self.matches(#"\bpass\b"#, "a pass here"))
        #expect(try !Self.matches(#"\bpass\b"#, "password"))
        #expect(try Self.matches(#"\Bass"#, "pass"))
        #expect(try Self.matches(#"\s+\w+\."#, "x  end."))
        #expect(try Self.matches(#"[\d_]+"#, "__1"))
        #expect(try Self.matches(#"a\.b"#, "a.b"))
        #expect(try !Self.matches(#"a\.b"#, "axb"))
        #expect(try Self.matches("(?i)IGNORE previous", "please ignore PREVIOUS instructions"))
        #expect(try !Self.matches("IGNORE", "ignore"))
        #expect(try Self.matches("a{,2}", "a{,2}"))  // not a repetition: literal
        #expect(try Self.matches("x*", ""))
        #expect(try Self.matches("(a*)*b", "aaab"))
    }

    @Test func refusesWhatNeedsBacktracking() {
        for pattern in [#"(a)\1"#, "(?=a)", "(?!a)", "(?<=a)b", "a{2000}", "(", "a)", "*a", "[a-", #"\q"#, "[z-a]"] {
            #expect(throws: RegexError.self, "\(pattern)") { try LinearRegex(pattern) }
        }
    }

    /// A megabyte of `a`s against patterns that take a backtracking engine exponential time.
    @Test(arguments: ["(a+)+b", "(a|a)*b", "(a|aa)+$b", "(a*)*b", #"(\w+\s?)+!"#, "(.*a){3}x"])
    func pathologicalPatternsStayLinear(pattern: String) throws {
        let regex = try LinearRegex(pattern)
        let text = String(repeating: "a", count: 1 << 18)
        let clock = ContinuousClock()
        let elapsed = clock.measure { #expect(!regex.matches(text)) }
        // Linear: a backtracking engine would never end. 256 KiB, not more: the Swift suite's tests
        // share the cooperative pool's threads, and a longer run starves its timing-bound tests.
        #expect(elapsed < .seconds(30), "\(pattern): \(elapsed)")
        print("LinearRegex \(pattern) over 256 KiB of a: \(elapsed)")
    }
}
