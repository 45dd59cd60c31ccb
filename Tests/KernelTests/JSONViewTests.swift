import NIOCore
import Testing
@testable import Kernel

/// A `JSONView` over scanned bytes reads what the jansson tree of the same bytes reads.
@Suite struct JSONViewTests {
    static let document = #"""
    { "model": "m", "messages": [ {"role": "user", "content": "line\nnext \"quoted\" \ud83d\ude00 \/ tab\t"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","function":{"name":"f","arguments":"{}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "é"}, {"type":"image"}]} ],
      "stop": ["a", "b"], "n": 3, "t": 0.5, "big": -12e2, "empty": {}, "list": [ ], "flag": false, "k\u0065y": "escaped key" }
    """#

    static func both() throws -> (JSONView, JSON) {
        let buffer = ByteBuffer(string: document)
        let body = RequestBody(raw: buffer, scan: try JSONScanner.scan(buffer))
        return (body.view, try JSON.parse(buffer))
    }

    /// The view of a scanned body: its values are read from the bytes.
    static func scanned(_ text: String) throws -> JSONView {
        let buffer = ByteBuffer(string: text)
        return RequestBody(raw: buffer, scan: try JSONScanner.scan(buffer)).view
    }

    /// Every value reachable from the top, compared with the tree's.
    static func agree(_ view: JSONView, _ json: JSON, path: String = "$") {
        #expect(view.kind == json.kind, "\(path)")
        #expect(view.string == json.string, "\(path)")
        #expect(view.int == json.int, "\(path)")
        #expect(view.double == json.double, "\(path)")
        #expect(view.bool == json.bool, "\(path)")
        #expect(view.count == json.count, "\(path)")
        #expect(view.isEmpty == ((json.isArray || json.isObject) && json.count == 0), "\(path)")
        #expect(view.json == json, "\(path)")
        #expect(view.keys == json.keys, "\(path)")
        for (index, (element, expected)) in zip(view.elements, json.elements).enumerated() {
            agree(element, expected, path: "\(path)[\(index)]")
        }
        for key in json.keys {
            guard let member = view[key] else {
                Issue.record("\(path).\(key) missing")
                continue
            }
            agree(member, json[key]!, path: "\(path).\(key)")
        }
    }

    @Test func readsWhatTheTreeReads() throws {
        let (view, json) = try Self.both()
        Self.agree(view, json)
        #expect(view["absent"] == nil)
        #expect(view["messages"]?[0]?["content"]?.string == "line\nnext \"quoted\" 😀 / tab\t")
        #expect(view["key"]?.string == "escaped key")
        #expect(view["messages"]?.elements[2]["content"]?.textCharacterCount == 1)
    }

    /// Scalars counted on a string's bytes are the scalars of the string it decodes to: raw UTF-8
    /// of one to four bytes, short escapes, `\u` escapes and surrogate pairs.
    @Test func countsAStringsScalarsOnItsBytes() throws {
        let texts = [#""""#, #""plain ascii""#, #""café 🙂 日本""#, #""a\nb\t\"c\\d\/e""#, #""\u00e9\u00E9x""#,
                     #""\ud83d\ude42 and \uD83D\uDE00""#, #""e\u0301 (é as two scalars)""#, #""\u2028\uFFFF""#]
        for text in texts {
            let view = JSONView(try JSON.parse(ByteBuffer(string: "{\"s\": \(text)}")))
            let scanned = try #require(Self.scanned("{\"s\": \(text)}")["s"])
            let decoded = try #require(scanned.string)
            #expect(scanned.stringScalarCount == decoded.unicodeScalars.count, "\(text)")
            #expect(view["s"]?.stringScalarCount == decoded.unicodeScalars.count, "\(text)")
        }
        #expect(try Self.scanned(#"{"n": 12}"#)["n"]?.stringScalarCount == nil)
        // Long strings, so that escapes and multi-byte scalars fall at every offset of an eight-byte word.
        var generator = SystemRandomNumberGenerator()
        let pieces = ["a", "Z", " ", "é", "日", "🙂", #"\n"#, #"\""#, #"\u00e9"#, #"\ud83d\ude42"#, #"\/"#]
        for _ in 0..<200 {
            let text = "\"" + (0..<Int.random(in: 0...60, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined() + "\""
            let scanned = try #require(Self.scanned("{\"s\": \(text)}")["s"])
            #expect(scanned.stringScalarCount == scanned.string?.unicodeScalars.count, "\(text)")
        }
    }

    /// Integers are read from their text as `Int(String)` reads them, to the edges of 64 bits.
    @Test func integersAreReadAsIntReadsThem() throws {
        var generator = SystemRandomNumberGenerator()
        let values = ["0", "-0", "7", "-7", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
                      "-9223372036854775809", "99999999999999999999", "", "-", "1x", " 1"]
            + (0..<2000).map { _ in String(Int.random(in: .min ... .max, using: &generator)) }
        for text in values {
            var text = text
            #expect(text.withUTF8 { JSONView.integer(UnsafeRawBufferPointer($0)) } == Int(text), "\(text)")
        }
        #expect(try Self.scanned(#"{"n": -9223372036854775808}"#)["n"]?.int == .min)
    }

    /// Several members in one call, from the index of a scanned body and from the walk of a nested
    /// object, are what one subscript per key finds (an escaped key included).
    @Test func membersAreWhatSubscriptsFind() throws {
        let (view, _) = try Self.both()
        let keys = ["n", "absent", "key", "model", "flag", "messages"]
        let inner = try #require(view["messages"]?[1])
        for object in [view, inner, JSONView(try JSON.parse(ByteBuffer(string: Self.document)))] {
            let found = object.members(keys + ["role", "tool_calls"])
            #expect(found.map { $0?.json } == (keys + ["role", "tool_calls"]).map { object[$0]?.json })
        }
        #expect(view.members(keys).compactMap { $0 }.count == 5)
    }

    /// A walk over an object's members, from the index of a scanned body, the walk of a nested
    /// object and a tree, meets every member subscripts find, in document order (escaped keys decoded).
    @Test func aWalkOverTheMembersMeetsWhatSubscriptsFind() throws {
        let (view, tree) = try Self.both()
        let inner = try #require(view["messages"]?[1])
        for object in [view, inner, JSONView(tree), JSONView(try #require(tree["messages"]?[1]))] {
            var walked: [(String, JSON)] = []
            object.forEachMember { key, value in walked.append((String(decoding: key, as: UTF8.self), value().json)) }
            #expect(walked.map(\.0) == object.keys)
            #expect(walked.map(\.1) == object.keys.map { object[$0]?.json })
        }
        var keys: [String] = []
        view.forEachMember { key, _ in keys.append(String(decoding: key, as: UTF8.self)) }
        #expect(keys.last == "key")
        JSONView(JSON(5)).forEachMember { _, _ in Issue.record("a number has no members") }
        try Self.scanned("[1]").forEachMember { _, _ in Issue.record("an array has no members") }
    }

    /// Strings are skipped eight bytes at a time up to a quote or backslash: one at every offset of
    /// a long string, in a nested object (walked, not indexed), leaves every member where the tree has it.
    @Test func anEscapeIsSeenAtEveryOffsetOfALongString() throws {
        for escape in [#"\""#, #"\\"#, #"\n"#, #"\u00e9"#, #"\\\""#] {
            for offset in 0..<20 {
                let text = String(repeating: "x", count: offset) + escape + String(repeating: "y", count: 19 - offset)
                let document = #"{"messages": [{"content": ""# + text + #"", "role": "user", "n": [1, "]"]}, "tail"]}"#
                let buffer = ByteBuffer(string: document)
                let view = RequestBody(raw: buffer, scan: try JSONScanner.scan(buffer)).view
                Self.agree(view, try JSON.parse(buffer), path: "\(escape) at \(offset)")
            }
        }
    }
}
