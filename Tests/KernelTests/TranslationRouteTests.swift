import Logging
import NIOCore
import Testing
@testable import Kernel

/// Requests and answers through chains of translation steps, as `Provider.answer` runs them.
@Suite struct TranslationRouteTests {
    func request(_ operation: APIOperation, _ body: JSON, stream: Bool = false) -> GatewayRequest {
        GatewayRequest(operation: operation, dialect: operation == .messages ? .anthropic : .openAI, method: .POST, uri: "/v1/x",
                       headers: [:], body: RequestBody(json: body), model: "public", stream: stream,
                       context: RequestContext(requestID: "r", logger: Logger(label: "test")))
    }

    func events(_ response: GatewayResponse) async throws -> [SSEEvent] {
        guard case .events(let stream) = response.body else {
            Issue.record("expected a stream")
            return []
        }
        var events: [SSEEvent] = []
        for try await event in stream { events.append(event) }
        return events
    }

    func whole(_ response: GatewayResponse) throws -> JSON {
        guard case .whole(let bytes) = response.body else {
            Issue.record("expected a whole answer")
            return .null
        }
        return try JSON.parse(bytes)
    }

    @Test func routesEveryFrontDoorToEveryDialectInAtMostTwoSteps() {
        let all: [APIOperation] = [.chatCompletions, .messages, .responses]
        for from in all {
            for to in all {
                let route = Translation.route(from: from, to: [to])
                #expect(route?.target == (from == to ? nil : to), "\(from) → \(to)")
                #expect((route?.steps.count ?? 9) == (from == to ? 0 : from == .chatCompletions || to == .chatCompletions ? 1 : 2))
            }
        }
        // A provider that speaks chat and Responses answers a Responses client natively.
        #expect(Translation.route(from: .responses, to: [.chatCompletions, .responses])?.steps.isEmpty == true)
    }

    @Test func responsesClientReachesAnAnthropicProviderAndBack() throws {
        let route = try #require(Translation.route(from: .responses, to: [.messages]))
        #expect(route.steps.map(\.to) == [.chatCompletions, .messages])
        let asked: JSON = [
            "model": "public", "instructions": "Be brief.", "max_output_tokens": 50, "metadata": ["t": "1"],
            "input": [["role": "user", "content": "Weather in Oslo?"]],
            "tools": [["type": "function", "name": "get_weather", "parameters": ["type": "object"], "strict": false]],
        ]
        let (translated, askedBySteps) = try route.request(request(.responses, asked), upstreamModel: "claude-x")
        #expect(translated.operation == .messages)
        #expect(translated.dialect == .anthropic)
        let upstream = translated.body.json
        #expect(upstream["model"] == "claude-x")
        #expect(upstream["system"] == "Be brief.")
        #expect(upstream["max_tokens"] == 50)
        #expect(upstream["tools"]?[0]?["name"] == "get_weather")
        #expect(askedBySteps.count == 2 && askedBySteps[0] == asked)

        let message: JSON = [
            "id": "msg_01abc", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [["type": "text", "text": "Checking."],
                        ["type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": ["city": "Oslo"]]],
            "stop_reason": "tool_use", "usage": ["input_tokens": 20, "output_tokens": 10],
        ]
        let answer = try route.answer(.json(message), asked: askedBySteps, allocator: ByteBufferAllocator())
        let response = try whole(answer)
        #expect(response["object"] == "response")
        // The gateway names a translated Response itself: providers' completion ids repeat.
        #expect(response["id"]?.string?.hasPrefix("resp_") == true && response["id"] != "resp_01abc")
        #expect(response["status"] == "completed")
        #expect(response["instructions"] == "Be brief.")
        #expect(response["metadata"] == ["t": "1"])
        #expect(response["output"]?[0]?["content"]?[0]?["text"] == "Checking.")
        #expect(response["output"]?[1]?["type"] == "function_call")
        #expect(response["output"]?[1]?["call_id"] == "toolu_1")
        #expect(response["output"]?[1]?["arguments"] == #"{"city":"Oslo"}"#)
        #expect(response["usage"]?["total_tokens"] == 30)
    }

    @Test func responsesClientStreamsFromAnAnthropicProvider() async throws {
        let route = try #require(Translation.route(from: .responses, to: [.messages]))
        let (_, asked) = try route.request(request(.responses, ["model": "public", "input": "hi", "stream": true], stream: true),
                                           upstreamModel: "claude-x")
        let upstream: [(String, JSON)] = [
            ("message_start", ["type": "message_start", "message": ["id": "msg_9", "model": "claude-x", "usage": ["input_tokens": 4, "output_tokens": 1]]]),
            ("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]),
            ("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": "Hel"]]),
            ("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": "lo"]]),
            ("content_block_stop", ["type": "content_block_stop", "index": 0]),
            ("message_delta", ["type": "message_delta", "delta": ["stop_reason": "end_turn"], "usage": ["output_tokens": 2]]),
            ("message_stop", ["type": "message_stop"]),
        ]
        let source = GatewayResponse(body: .events(EventStream(upstream.map { SSEEvent(event: $0.0, data: $0.1.description) })))
        let output = try await events(route.answer(source, asked: asked, allocator: ByteBufferAllocator()))
        let types = output.compactMap { $0.json?["type"]?.string }
        #expect(types == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
                          "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
                          "response.content_part.done", "response.output_item.done", "response.completed"])
        #expect(output.map { $0.event } == types.map { Optional($0) })
        #expect(output.compactMap { $0.json?["sequence_number"]?.int } == Array(0..<output.count))
        let completed = try #require(output.last?.json?["response"])
        #expect(completed["id"]?.string?.hasPrefix("resp_") == true && completed["id"] != "resp_9")
        #expect(output.first?.json?["response"]?["id"] == completed["id"])
        #expect(completed["output"]?[0]?["content"]?[0]?["text"] == "Hello")
        #expect(completed["usage"]?["input_tokens"] == 4)
        #expect(completed["usage"]?["output_tokens"] == 2)
    }

    @Test func messagesClientReachesAResponsesOnlyProviderAndBack() async throws {
        let route = try #require(Translation.route(from: .messages, to: [.responses]))
        #expect(route.steps.map(\.to) == [.chatCompletions, .responses])
        let asked: JSON = ["model": "public", "max_tokens": 30, "system": "Be brief.", "stream": true,
                           "messages": [["role": "user", "content": "hi"]]]
        let (translated, askedBySteps) = try route.request(request(.messages, asked, stream: true), upstreamModel: "gpt-x")
        #expect(translated.operation == .responses)
        #expect(translated.dialect == .openAI)
        let upstream = translated.body.json
        #expect(upstream["instructions"] == "Be brief.")
        #expect(upstream["input"] == [["type": "message", "role": "user", "content": "hi"]])
        #expect(upstream["max_output_tokens"] == 30)
        #expect(upstream["store"] == false)

        let response: JSON = ["id": "resp_7", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-x",
                              "output": [["id": "msg_7", "type": "message", "role": "assistant", "status": "completed",
                                          "content": [["type": "output_text", "text": "Hello", "annotations": .array()]]]],
                              "usage": ["input_tokens": 5, "output_tokens": 1, "total_tokens": 6]]
        let source = [
            ["type": "response.created", "sequence_number": 0,
             "response": ["id": "resp_7", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-x", "output": .array()]],
            ["type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
             "item": ["id": "msg_7", "type": "message", "role": "assistant", "status": "in_progress", "content": .array()]],
            ["type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_7", "output_index": 0, "content_index": 0, "delta": "Hello"],
            ["type": "response.completed", "sequence_number": 3, "response": response],
        ].map { (json: JSON) in SSEEvent(event: json["type"]?.string, data: json.description) }
        let output = try await events(route.answer(GatewayResponse(body: .events(EventStream(source))), asked: askedBySteps,
                                                   allocator: ByteBufferAllocator()))
        #expect(output.map { $0.event ?? "" } == ["message_start", "ping", "content_block_start", "content_block_delta",
                                                  "content_block_stop", "message_delta", "message_stop"])
        #expect(output[3].json?["delta"]?["text"] == "Hello")
        #expect(output[5].json?["usage"]?["output_tokens"] == 1)

        let whole = try self.whole(route.answer(.json(response), asked: askedBySteps, allocator: ByteBufferAllocator()))
        #expect(whole["type"] == "message")
        #expect(whole["id"] == "msg_7")
        #expect(whole["content"] == [["type": "text", "text": "Hello"]])
        #expect(whole["stop_reason"] == "end_turn")
        #expect(whole["usage"] == ["input_tokens": 5, "output_tokens": 1])
    }

    @Test func aStreamCutShortFailsThroughTheChain() async throws {
        let route = try #require(Translation.route(from: .responses, to: [.messages]))
        let (_, asked) = try route.request(request(.responses, ["model": "public", "input": "hi", "stream": true], stream: true),
                                           upstreamModel: "claude-x")
        let upstream = [SSEEvent(event: "message_start", data: #"{"type":"message_start","message":{"id":"msg_1","model":"m"}}"#)]
        let answer = try route.answer(GatewayResponse(body: .events(EventStream(upstream))), asked: asked, allocator: ByteBufferAllocator())
        await #expect(throws: UpstreamError.self) { _ = try await events(answer) }
    }
}
