import NIOCore
import Testing
@testable import Kernel

@Suite struct RequestBodyTests {
    static func body(_ text: String) throws -> RequestBody {
        let raw = ByteBuffer(string: text)
        return RequestBody(raw: raw, json: try JSON.parse(raw))
    }

    static func text(_ body: RequestBody) -> String {
        String(buffer: body.bytes(allocator: ByteBufferAllocator()))
    }

    @Test func forwardsTheClientsBytesWhenNothingChanged() throws {
        let body = try Self.body(#"{ "model" : "a", "t": 0.10 }"#)
        #expect(Self.text(body) == #"{ "model" : "a", "t": 0.10 }"#)
        #expect(!body.isModified)
    }

    @Test func swapsOneReplacedValueInTheClientsBytes() throws {
        var body = try Self.body(#"{ "messages": [{"role":"user","content":"\"model\": x"}], "model" : "a", "t": 0.10 }"#)
        body.replaceMember("model", with: "upstream-b")
        #expect(body.isModified)
        #expect(body.json["model"]?.string == "upstream-b")
        #expect(Self.text(body) == #"{ "messages": [{"role":"user","content":"\"model\": x"}], "model" : "upstream-b", "t": 0.10 }"#)
    }

    @Test func encodesTheTreeWhenMoreChanged() throws {
        var body = try Self.body(#"{"model":"a","t":0.10}"#)
        body.replaceMember("model", with: "b")
        body.json["stream_options"] = ["include_usage": true]
        #expect(Self.text(body) == #"{"model":"b","t":0.1,"stream_options":{"include_usage":true}}"#)

        var first = try Self.body(#"{"model":"a"}"#)
        first.json["n"] = 1
        first.replaceMember("model", with: "b")
        #expect(Self.text(first) == #"{"model":"b","n":1}"#)
    }

    @Test func encodesTheTreeWhenTheBytesCannotBeSpliced() throws {
        for (text, expected) in [
            (#"{"t":1}"#, #"{"t":1,"model":"b"}"#),  // absent
            (#"{"model":"x","model":"a"}"#, #"{"model":"b"}"#),  // repeated
            (#"{"mod\u0065l":"a"}"#, #"{"model":"b"}"#),  // escaped
        ] {
            var body = try Self.body(text)
            body.replaceMember("model", with: "b")
            #expect(Self.text(body) == expected)
            #expect(try JSON.parse(body.bytes(allocator: ByteBufferAllocator())) == body.json)
        }
    }
}
