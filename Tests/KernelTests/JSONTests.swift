import NIOCore
import Testing
@testable import Kernel

@Suite struct JSONTests {
    @Test func readsTypedValues() throws {
        let json = try JSON.parse(#"{"s":"hé\u0000x","i":42,"r":1.5,"whole":2.0,"b":true,"n":null,"a":[1,"two"],"o":{"k":"v"}}"#)
        #expect(json["s"]?.string == "hé\u{0}x")
        #expect(json["i"]?.int == 42)
        #expect(json["r"]?.double == 1.5)
        #expect(json["r"]?.int == nil)
        #expect(json["whole"]?.int == 2)
        #expect(json["b"]?.bool == true)
        #expect(json["n"]?.isNull == true)
        #expect(json["a"]?.elements.count == 2)
        #expect(json["a"]?[1]?.string == "two")
        #expect(json["o"]?["k"]?.string == "v")
        #expect(json["missing"] == nil)
        #expect(json["i"]?.string == nil)
    }

    @Test func keepsKeyOrderAndUnknownFieldsWhenPatched() throws {
        var json = try JSON.parse(#"{"z":1,"model":"public","a":{"new_param":[1,2]},"m":"x"}"#)
        json["model"] = "upstream"
        json["added"] = true
        #expect(String(decoding: json.encoded(), as: UTF8.self) == #"{"z":1,"model":"upstream","a":{"new_param":[1,2]},"m":"x","added":true}"#)
        json["z"] = nil
        #expect(json.keys == ["model", "a", "m", "added"])
    }

    @Test func encodesIntoABufferWhateverTheSizeHint() throws {
        let long = String(repeating: "é", count: 3000)
        let json: JSON = ["model": "m", "text": JSON(long)]
        let expected = #"{"model":"m","text":"\#(long)"}"#
        for hint in [0, 10, 4096, 100_000] {
            let buffer = json.encoded(using: ByteBufferAllocator(), sizeHint: hint)
            #expect(buffer.getString(at: 0, length: buffer.readableBytes) == expected)
            #expect(try JSON.parse(buffer)["text"]?.string == long)
        }
        #expect(JSON.null.encoded(using: ByteBufferAllocator()).readableBytes == 4)
    }

    @Test func hasValueSemantics() throws {
        let original = try JSON.parse(#"{"outer":{"inner":1}}"#)
        var copy = original
        copy["outer"]?["inner"] = 2
        #expect(original["outer"]?["inner"]?.int == 1)
        #expect(copy["outer"]?["inner"]?.int == 2)

        var child = original["outer"]!
        child["inner"] = 3
        #expect(original["outer"]?["inner"]?.int == 1)
    }

    @Test func copiesOnlyWhatIsWritten() throws {
        let original = try JSON.parse(#"{"model":"a","messages":[{"role":"user","content":"hi"}],"o":{"k":[1]}}"#)
        var copy = original
        copy["model"] = "b"  // the copy shares the other members with the original...
        copy["messages"]?[0]?["content"] = "changed"  // ...until one of them is written
        copy["o"]?["k"]?.append(2)
        var again = copy
        again["messages"]?.append(["role": "assistant"])
        #expect(original.description == #"{"model":"a","messages":[{"role":"user","content":"hi"}],"o":{"k":[1]}}"#)
        #expect(copy.description == #"{"model":"b","messages":[{"role":"user","content":"changed"}],"o":{"k":[1,2]}}"#)
        #expect(again["messages"]?.elements.count == 2)
        #expect(copy["messages"]?.elements.count == 1)
    }

    @Test func readsOneMemberAsAWholeParseWould() throws {
        let documents = [
            #"{"id":"x","choices":[{"message":{"content":"{\"usage\": 1} ]}"}}],"usage":{"prompt_tokens":19,"total_tokens":28}}"#,
            #"{"usage":{"a":1},"choices":[{"usage":{"nested":true}}]}"#,
            #"{"choices":[{"usage":{"nested":true}}]}"#,
            #"{"usage":1,"usage":{"last":true}}"#,
            " \n{ \"usage\" :\t[ 1, -2.5e3, \"]\" , {\"}\":null} ] ,\"b\" : false }\r\n",
            #"{"usag\u0065":{"escaped":true}}"#,
            #"{"usage":null}"#,
            #"{"text":"\\","usage":"\\\""}"#,
            #"{"é":"ü","usage":{"t":"日本"}}"#,
            "{}", "[]", "[{\"usage\":1}]", "\"usage\"", "7", "",
            #"{"usage":{"a":1}} trailing"#, #"{"usage":{"a":1}"#, #"{"usage":}"#, #"{"usage" 1}"#,
        ]
        for document in documents {
            let buffer = ByteBuffer(string: document)
            #expect(JSON.member("usage", in: buffer) == (try? JSON.parse(buffer))?["usage"], "\(document)")
            #expect(JSONView.member("usage", in: buffer)?.json == JSON.member("usage", in: buffer), "\(document)")
        }
        #expect(JSON.member("usage", in: ByteBuffer(string: documents[0]))?["total_tokens"]?.int == 28)

        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]":,01-.e truenl\ua"#.utf8) + [0x80, 0xff]
        for _ in 0..<5000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let buffer = ByteBuffer(bytes: bytes)
            let member = JSON.member("a", in: buffer)
            if let whole = try? JSON.parse(buffer) { #expect(member == whole["a"], "\(String(decoding: bytes, as: UTF8.self))") }
            #expect(JSONView.member("a", in: buffer)?.json == member, "\(String(decoding: bytes, as: UTF8.self))")
        }
    }

    /// An answer's usage read from its bytes (`JSONView.member`) counts as the tree does.
    @Test func usageReadFromBytesCountsAsTheTree() throws {
        let answers = [
            #"{"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            #"{"usage":{"prompt_tokens":1e3,"completion_tokens":2.5,"prompt_tokens_details":{"cached_tokens":5000}}}"#,
            #"{"usage":{"prompt_tokens":-4,"completion_tokens":99999999999999999999}}"#,
            #"{"usage":{"prompt_tokens":"19"}}"#, #"{"usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":2}}"#,
            #"{"usage":[1]}"#, #"{"usage":null}"#, #"{"id":"x"}"#,
        ]
        for answer in answers {
            let buffer = ByteBuffer(string: answer)
            let tree = JSON.member("usage", in: buffer), view = JSONView.member("usage", in: buffer)
            #expect(Usage(openAI: view) == Usage(openAI: tree), "\(answer)")
            #expect(Usage(anthropic: view) == Usage(anthropic: tree), "\(answer)")
            #expect(Usage(responses: view) == Usage(responses: tree), "\(answer)")
        }
        let usage = try #require(Usage(openAI: JSONView.member("usage", in: ByteBuffer(string: answers[0]))))
        #expect(usage.inputTokens == 19 && usage.outputTokens == 9 && usage.cachedInputTokens == 4)
    }

    @Test func reportsLineAndColumn() {
        #expect(throws: JSONParseError.self) { try JSON.parse("{\n  \"a\": 1,\n  \"b\": }") }
        do {
            _ = try JSON.parse("{\n  \"a\": 1,\n  \"b\": }")
        } catch {
            #expect(error.line == 3)
            #expect(error.column > 0)
        }
    }

    @Test func survivesGarbage() {
        var generator = SystemRandomNumberGenerator()
        let samples: [[UInt8]] = [[], [0], Array("{".utf8), Array("[[[[".utf8), Array(repeating: UInt8(ascii: "["), count: 100_000),
                                  Array("\"\\ud800\"".utf8), Array("1e99999".utf8), [0xff, 0xfe, 0x22], Array("{\"a\":".utf8)]
        for sample in samples { _ = try? JSON.parse(sample) }
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<64, using: &generator)
            let alphabet = Array("{}[]\":,01-.eE truefalsn\\u".utf8) + [0, 0x80, 0xff]
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            if let json = try? JSON.parse(bytes) { _ = json.encoded() }
        }
    }

    @Test func roundTripsNumbersExactly() throws {
        let json = try JSON.parse(#"{"t":0.7,"big":9007199254740993,"neg":-3}"#)
        #expect(json.description == #"{"t":0.7,"big":9007199254740993,"neg":-3}"#)
        let again = try JSON.parse(json.encoded())
        #expect(again["t"]?.double == 0.7)
        #expect(again["big"]?.int == 9_007_199_254_740_993)
        #expect(again == json)
    }

    @Test func buildsFromLiterals() {
        let json: JSON = ["a": 1, "b": [true, .null, "x"], "c": 2.5]
        #expect(json.description == #"{"a":1,"b":[true,null,"x"],"c":2.5}"#)
        #expect(JSON(Double.nan).isNull)
    }
}
