import NIOCore
import Testing
@testable import Kernel

@Suite struct RequestBodyTests {
    /// A body as the front door makes it: scanned, no tree.
    static func body(_ text: String) throws -> RequestBody {
        let raw = ByteBuffer(string: text)
        return RequestBody(raw: raw, scan: try JSONScanner.scan(raw))
    }

    static func text(_ body: RequestBody) -> String {
        String(buffer: body.bytes(allocator: ByteBufferAllocator()))
    }

    @Test func forwardsTheClientsBytesWhenNothingChanged() throws {
        let body = try Self.body(#"{ "model" : "a", "t": 0.10 }"#)
        #expect(Self.text(body) == #"{ "model" : "a", "t": 0.10 }"#)
        #expect(!body.isModified)
        #expect(!body.isParsed)
    }

    @Test func readsMembersFromTheBytesWithoutATree() throws {
        let body = try Self.body(#"{"model":"a\"b\u00e9","stream":false,"n":2,"t":1.0,"top_p":0.5,"messages":[ ],"input":[1],"x":null}"#)
        #expect(body.member("model")?.string == "a\"bé")
        #expect(body.member("stream")?.bool == false)
        #expect(body.member("n")?.int == 2)
        #expect(body.member("t")?.int == 1)
        #expect(body.member("top_p")?.int == nil)
        #expect(body.member("top_p")?.double == 0.5)
        #expect(body.member("messages")?.kind == .array)
        #expect(body.member("messages")?.isEmpty == true)
        #expect(body.member("input")?.isEmpty == false)
        #expect(body.member("x")?.isNull == true)
        #expect(body.member("absent") == nil)
        #expect(body.member("input")?.json == [1])
        #expect(!body.isParsed)
        // Once a plugin built the tree, reads agree with it.
        #expect(body.json["model"]?.string == "a\"bé")
        #expect(body.isParsed)
        #expect(body.member("model")?.string == "a\"bé")
    }

    @Test func swapsOneReplacedValueInTheClientsBytes() throws {
        var body = try Self.body(#"{ "messages": [{"role":"user","content":"\"model\": x"}], "model" : "a", "t": 0.10 }"#)
        body.replaceMember("model", with: "upstream-b")
        #expect(body.isModified)
        #expect(!body.isParsed)
        #expect(body.member("model")?.string == "upstream-b")
        #expect(Self.text(body) == #"{ "messages": [{"role":"user","content":"\"model\": x"}], "model" : "upstream-b", "t": 0.10 }"#)
        #expect(body.json["model"]?.string == "upstream-b")
    }

    @Test func addsAndRemovesMembersInTheBytes() throws {
        var body = try Self.body(#"{"a":1, "b":[2], "c":{"d":3}}"#)
        body.replaceMember("stream_options", with: ["include_usage": true])
        #expect(Self.text(body) == #"{"a":1, "b":[2], "c":{"d":3},"stream_options":{"include_usage":true}}"#)
        body.replaceMember("b", with: nil)
        #expect(Self.text(body) == #"{"a":1, "c":{"d":3},"stream_options":{"include_usage":true}}"#)
        body.replaceMember("stream_options", with: nil)
        #expect(Self.text(body) == #"{"a":1, "c":{"d":3}}"#)
        body.replaceMember("a", with: nil)
        #expect(Self.text(body) == #"{"c":{"d":3}}"#)
        body.replaceMember("c", with: nil)
        #expect(Self.text(body) == #"{}"#)
        body.replaceMember("model", with: "m")
        body.replaceMember("quote\"key", with: 1)
        #expect(Self.text(body) == #"{"model":"m","quote\"key":1}"#)
        #expect(body.member("quote\"key")?.int == 1)
        body.replaceMember("absent", with: nil)
        #expect(try JSON.parse(body.bytes(allocator: ByteBufferAllocator())) == ["model": "m", "quote\"key": 1])
        #expect(!body.isParsed)
    }

    @Test func splicesAStringWithCharactersToEscape() throws {
        var body = try Self.body(#"{"model":"a","n":1}"#)
        body.replaceMember("model", with: "q\"uote\\ \n\u{1}é")
        #expect(Self.text(body) == #"{"model":"q\"uote\\ \n\u0001é","n":1}"#)
        #expect(body.member("model")?.string == "q\"uote\\ \n\u{1}é")
        #expect(body.member("n")?.int == 1)
        body.replaceMember("new\tkey", with: "v")
        #expect(Self.text(body) == #"{"model":"q\"uote\\ \n\u0001é","n":1,"new\tkey":"v"}"#)
        #expect(body.member("new\tkey")?.string == "v")
        #expect(!body.isParsed)
    }

    @Test func setsAStringOnATreeBody() throws {
        var body = try Self.body(#"{"model":"a"}"#)
        body.json["n"] = 2
        body.replaceMember("model", with: "b")
        #expect(body.json == ["model": "b", "n": 2])
        #expect(Self.text(body) == #"{"model":"b","n":2}"#)
    }

    @Test func aTreeBuiltBeforeASpliceChangesWithIt() throws {
        var body = try Self.body(#"{"model":"a","n":1}"#)
        #expect(body.json["n"] == 1)
        body.replaceMember("model", with: "b")
        #expect(body.json == ["model": "b", "n": 1])
        #expect(Self.text(body) == #"{"model":"b","n":1}"#)
    }

    @Test func matchesEscapedKeysByTheirValue() throws {
        var body = try Self.body(#"{"mod\u0065l":"a","t":1}"#)
        #expect(body.member("model")?.string == "a")
        body.replaceMember("model", with: "b")
        #expect(Self.text(body) == #"{"mod\u0065l":"b","t":1}"#)
    }

    @Test func encodesTheTreeOnceItIsTheBody() throws {
        var body = try Self.body(#"{"model":"a","t":0.10}"#)
        body.replaceMember("model", with: "b")
        body.json["stream_options"] = ["include_usage": true]
        #expect(Self.text(body) == #"{"model":"b","t":0.1,"stream_options":{"include_usage":true}}"#)
        body.replaceMember("t", with: nil)
        #expect(Self.text(body) == #"{"model":"b","stream_options":{"include_usage":true}}"#)
        #expect(body.member("model")?.string == "b")
    }

    @Test func copiesShareOneTreeBuiltOnce() throws {
        let body = try Self.body(#"{"model":"a"}"#)
        let copy = body
        _ = copy.json
        #expect(body.isParsed)
    }
}
