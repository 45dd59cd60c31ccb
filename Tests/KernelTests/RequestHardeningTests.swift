import NIOCore
import NIOHTTP1
import Testing
@testable import Kernel

/// What the front door refuses before any plugin sees a request, and the bounds on what a body
/// and an upstream may cost (docs/ARCHITECTURE.md, "What a request may cost").
@Suite struct RequestHardeningTests {
    func body(_ text: String) -> JSON { try! JSON.parse(text) }

    /// A body as the front door reads it: scanned, never parsed.
    func scanned(_ text: String) throws -> RequestBody {
        let raw = ByteBuffer(string: text)
        return RequestBody(raw: raw, scan: try JSONScanner.scan(raw))
    }

    /// The front door's reading of a chat request with `members` after its model and messages.
    func fields(_ members: String, operation: APIOperation = .chatCompletions, dialect: APIDialect = .openAI) throws -> RequestFields {
        try RequestFields(scanned(#"{"model": "m", "messages": [{"role": "user"}], "# + members + "}"),
                          operation: operation, dialect: dialect)
    }

    @Test(arguments: [
        #""max_tokens": 9223372036854775807"#, #""max_tokens": -5"#, #""max_tokens": 0"#, #""max_tokens": 1.5"#,
        #""max_completion_tokens": 2147483648"#, #""max_output_tokens": "10""#, #""n": 0"#, #""n": 1e9"#,
        #""top_logprobs": 21"#, #""temperature": 2.5"#, #""top_p": -0.1"#, #""presence_penalty": 3"#,
        #""dimensions": 0"#, #""top_k": -1"#, #""seed": 1.5"#, #""temperature": 1e308"#, #""n": 1, "top_p": 2"#,
    ])
    func refusesNumbersOutOfRange(_ members: String) throws {
        let key = try JSON.parse("{" + members + "}").keys.last!
        #expect {
            try fields(members)
        } throws: { error in
            (error as? GatewayError)?.status == .badRequest && (error as? GatewayError)?.param == key
        }
    }

    @Test func acceptsNumbersInRangeAndNulls() throws {
        let read = try fields(#""max_tokens": 2147483647, "n": 128, "temperature": 2, "top_p": 0, "seed": -9223372036854775808, "top_logprobs": null, "max_completion_tokens": 1.0, "stream": true"#)
        #expect(read.model == "m")
        #expect(read.stream)
    }

    @Test func anthropicTemperatureStopsAtOne() throws {
        _ = try fields(#""max_tokens": 5, "temperature": 1"#, operation: .messages, dialect: .anthropic)
        #expect(throws: GatewayError.self) { try fields(#""max_tokens": 5, "temperature": 1.5"#, operation: .messages, dialect: .anthropic) }
    }

    @Test(arguments: [
        (#"{"messages": [1]}"#, APIOperation.chatCompletions, "model"),
        (#"{"model": "", "messages": [1]}"#, .chatCompletions, "model"),
        (#"{"model": 5, "messages": [1]}"#, .chatCompletions, "model"),
        (#"{"model": "m", "messages": [1], "stream": "yes"}"#, .chatCompletions, "stream"),
        (#"{"model": "m"}"#, .chatCompletions, "messages"),
        (#"{"model": "m", "messages": []}"#, .chatCompletions, "messages"),
        (#"{"model": "m", "messages": {}}"#, .chatCompletions, "messages"),
        (#"{"model": "m", "messages": [1]}"#, .messages, "max_tokens"),
        (#"{"model": "m", "input": null}"#, .embeddings, "input"),
        (#"{"model": "m", "input": 5}"#, .responses, "input"),
        (#"{"model": "m"}"#, .responses, "input"),
        // The shape is refused before the numbers.
        (#"{"n": 0, "model": "m", "messages": []}"#, .chatCompletions, "messages"),
    ])
    func refusesABodyWithoutTheShapeItsOperationNeeds(_ text: String, _ operation: APIOperation, _ param: String) throws {
        #expect {
            try RequestFields(scanned(text), operation: operation, dialect: .openAI)
        } throws: { error in
            (error as? GatewayError)?.status == .badRequest && (error as? GatewayError)?.param == param
        }
    }

    @Test func readsMembersWhoseKeysAreWrittenWithEscapes() throws {
        let read = try RequestFields(scanned(#"{"mod\u0065l": "m", "m\u0065ssages": [1], "str\u0065am": true, "m\u0061x_tokens": 5}"#),
                                     operation: .chatCompletions, dialect: .openAI)
        #expect(read.model == "m")
        #expect(read.stream)
    }

    @Test func refusesEscapedNumbersToo() throws {
        #expect(throws: GatewayError.self) {
            try RequestFields(scanned(#"{"model": "m", "messages": [1], "m\u0061x_tokens": 0}"#), operation: .chatCompletions, dialect: .openAI)
        }
    }

    @Test func requestBodiesRefuseDuplicateKeys() {
        var buffer = ByteBuffer(string: #"{"model": "a", "messages": [], "model": "b"}"#)
        #expect(throws: JSONParseError.self) { try JSON.parseRequest(buffer, memoryBudget: 1 << 20) }
        buffer = ByteBuffer(string: #"{"model": "a", "nested": {"k": 1, "k": 2}}"#)
        #expect(throws: JSONParseError.self) { try JSON.parseRequest(buffer, memoryBudget: 1 << 20) }
    }

    @Test func aParseStopsAtItsMemoryBudget() throws {
        // Small in bytes, large as a tree: 200,000 empty objects.
        let bytes = "[" + Array(repeating: "{}", count: 200_000).joined(separator: ",") + "]"
        let buffer = ByteBuffer(string: bytes)
        do {
            _ = try JSON.parseRequest(buffer, memoryBudget: 1 << 20)
            Issue.record("a 1 MiB budget parsed 200,000 objects")
        } catch {
            #expect(error.exceededBudget)
        }
        let parsed = try JSON.parseRequest(buffer, memoryBudget: 1 << 30)
        #expect(parsed.count == 200_000)
        // The budget is the parse's only: parsing afterwards on this thread is not limited.
        #expect(try JSON.parse(buffer).count == 200_000)
    }

    @Test func usageCountsStayBounded() throws {
        var usage = Usage(inputTokens: .max, outputTokens: -7, cachedInputTokens: .max)
        #expect(usage.inputTokens == Usage.maxTokens && usage.outputTokens == 0)
        usage.outputTokens = .max
        #expect(usage.totalTokens == 2 * Usage.maxTokens)
        #expect(body(#"{"t": 1e300}"#)["t"]?.tokenCount == Usage.maxTokens)
        #expect(body(#"{"t": -4}"#)["t"]?.tokenCount == 0)
        #expect(body(#"{"t": 12.7}"#)["t"]?.tokenCount == 12)
        #expect(body(#"{"t": "12"}"#)["t"]?.tokenCount == nil)
    }

    @Test func anOverlongEventStopsTheParser() {
        var parser = SSEParser(maxEventBytes: 64)
        let events = parser.feed(ByteBuffer(string: "data: {\"a\":1}\n\ndata: " + String(repeating: "x", count: 200)))
        #expect(events.map(\.data) == [#"{"a":1}"#])
        #expect(parser.overflowed)
        #expect(parser.feed(ByteBuffer(string: "\n\ndata: later\n\n")).isEmpty)
        #expect(parser.finish() == nil)
    }

    @Test func keysAreMatchedByDigest() {
        let digests = [KeyDigest(of: "one"), KeyDigest(hex: String(repeating: "ab", count: 32))!, KeyDigest(of: "two")]
        #expect(KeyDigest.match("two", in: digests) == 2)
        #expect(KeyDigest.match("three", in: digests) == nil)
        #expect(KeyDigest(hex: "abc") == nil)
        let headers: HTTPHeaders = ["Authorization": "bearer   tok  ", "x-api-key": "other"]
        #expect(headers.presentedKey == "tok")
        #expect(headers.bearerToken == "tok")
        #expect((["x-api-key": "k"] as HTTPHeaders).presentedKey == "k")
        #expect((["authorization": "Basic abc"] as HTTPHeaders).bearerToken == nil)
        for (value, token) in [("BEARER x", "x"), ("Bearer a b ", "a b"), ("Bearer é", "é"), ("Bearer    ", nil), ("Bearerx y", nil),
                               ("Bearer", nil), ("Bearer ", nil), ("Beare  x", nil), ("", nil)] as [(String, String?)] {
            #expect(HTTPHeaders.bearerToken(value) == token, "\(value)")
        }
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        #expect(KeyDigest(of: "abc") == KeyDigest(hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
    }

    @Test func credentialsAreDroppedInAnyCaseAndTheRestKeptInOrder() {
        let headers = HTTPHeaders([("Authorization", "Bearer a"), ("x-request-id", "r"), ("X-API-Key", "b"), ("accept", "x"),
                                   ("API-KEY", "c"), ("authorization", "Bearer d"), ("x-api-keys", "kept"), ("api-ke", "kept"), ("accept", "y")])
        let kept = headers.withoutCredentials
        #expect(kept.map { "\($0.name): \($0.value)" } == ["x-request-id: r", "accept: x", "x-api-keys: kept", "api-ke: kept", "accept: y"])
        #expect(HTTPHeaders().withoutCredentials.isEmpty)
    }
}
