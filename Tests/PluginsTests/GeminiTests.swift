import Kernel
import KernelTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import Plugins

/// The `gemini` provider: the translation between chat completions and Gemini's
/// `generateContent` (request, whole answer, stream, errors, embeddings) on fixed inputs, then the
/// provider on the wire against an upstream on 127.0.0.1.
@Suite struct GeminiTests {
    static func json(_ text: String) -> JSON { try! JSON.parse(text) }

    // MARK: Requests

    @Test func aFullChatRequestInGeminisForm() throws {
        let chat = Self.json(#"""
            {"model": "m", "messages": [
              {"role": "system", "content": "be brief"},
              {"role": "developer", "content": [{"type": "text", "text": "use metric units"}]},
              {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                           {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                           {"type": "image_url", "image_url": {"url": "https://example.com/cat.JPG?size=2"}}]},
              {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
              {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees"},
              {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
              {"role": "user", "content": "thanks"}],
             "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather", "strict": true,
                        "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
                                       "properties": {"city": {"type": ["string", "null"], "format": "uri", "minLength": 1},
                                                      "unit": {"const": "C"},
                                                      "days": {"type": "array", "items": {"type": "integer", "format": "int32"}},
                                                      "at": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}},
                                       "required": ["city"]}}},
                       {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}],
             "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
             "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "additionalProperties": false}}},
             "stop": "END", "temperature": 0.3, "top_p": 0.9, "max_completion_tokens": 99, "max_tokens": 5, "n": 2,
             "presence_penalty": 0.1, "seed": 7, "user": "u-1", "stream": true}
            """#)
        let expected = Self.json(#"""
            {"contents": [
              {"role": "user", "parts": [{"text": "what is this?"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                                         {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?size=2"}}]},
              {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"name": "get_time", "args": {}}}]},
              {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"content": "18 degrees"}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                {"text": "thanks"}]}],
             "systemInstruction": {"parts": [{"text": "be brief\n\nuse metric units"}]},
             "tools": [{"functionDeclarations": [
               {"name": "get_weather", "description": "weather",
                "parameters": {"type": "object",
                               "properties": {"city": {"nullable": true, "type": "string", "minLength": 1},
                                              "unit": {"enum": ["C"]},
                                              "days": {"type": "array", "items": {"type": "integer", "format": "int32"}},
                                              "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}},
                               "required": ["city"]}},
               {"name": "get_time"}]}],
             "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
             "generationConfig": {"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 99, "candidateCount": 2, "stopSequences": ["END"],
                                  "presencePenalty": 0.1, "seed": 7, "responseMimeType": "application/json",
                                  "responseJsonSchema": {"type": "object", "additionalProperties": false}}}
            """#)
        let translated = try ChatToGeminiRequest.translate(chat)
        #expect(translated == expected, "\(translated)")
    }

    @Test func choicesAndFormatsOfTheSmallerKind() throws {
        let auto = try ChatToGeminiRequest.translate(Self.json(#"""
            {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required", "response_format": {"type": "json_object"},
             "stop": ["a", "b"], "max_tokens": 12, "n": 1}
            """#))
        #expect(auto["toolConfig"] == Self.json(#"{"functionCallingConfig": {"mode": "ANY"}}"#))
        #expect(auto["generationConfig"] == Self.json(#"{"maxOutputTokens": 12, "stopSequences": ["a", "b"], "responseMimeType": "application/json"}"#))
        #expect(auto["systemInstruction"] == nil)
        let none = try ChatToGeminiRequest.translate(Self.json(#"{"messages": [{"role": "user", "content": "hi"}], "tool_choice": "none"}"#))
        #expect(none["toolConfig"]?["functionCallingConfig"]?["mode"]?.string == "NONE")
        #expect(none["generationConfig"] == nil)
    }

    @Test func whatHasNoGeminiFormIsRefused() {
        func refusal(_ text: String) -> GatewayError? {
            do { _ = try ChatToGeminiRequest.translate(Self.json(text)); return nil } catch { return error as? GatewayError }
        }
        let noType = refusal(#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/image"}}]}]}"#)
        #expect(noType?.status == .badRequest)
        #expect(noType?.param == "messages[0].content[0].image_url.url")
        #expect(refusal(#"{"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}"#)?.param == "messages[0].tool_call_id")
        #expect(refusal(#"{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}"#)?.param == "tools[0].type")
        #expect(refusal(#"{"messages": [{"role": "user", "content": "x"}], "modalities": ["text", "audio"]}"#)?.param == "modalities")
        #expect(refusal(#"{"messages": [{"role": "robot", "content": "x"}]}"#)?.param == "messages[0].role")
        #expect(refusal(#"{"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}]}"#)?.param
                == "messages[0].tool_calls[0].function.arguments")
        #expect(refusal(#"{"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f-1"}}]}]}"#)?.param == "messages[0].content[0].file")
    }

    // MARK: Whole answers

    @Test func aWholeAnswerAsACompletion() {
        let answer = Self.json(#"""
            {"candidates": [{"content": {"role": "model", "parts": [{"text": "pondering", "thought": true}, {"text": "It is "}, {"text": "sunny."},
                                                                      {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
                             "finishReason": "STOP", "index": 0}],
             "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 3, "cachedContentTokenCount": 6, "totalTokenCount": 17},
             "modelVersion": "gemini-2.5-flash-001", "responseId": "abc"}
            """#)
        let completion = GeminiToChat.completion(answer, model: "gemini-2.5-flash")
        #expect(completion["id"]?.string == "chatcmpl-abc")
        #expect(completion["object"]?.string == "chat.completion")
        #expect(completion["model"]?.string == "gemini-2.5-flash-001")
        let choice = completion["choices"]?[0]
        #expect(choice?["message"]?["content"]?.string == "It is sunny.")
        #expect(choice?["message"]?["refusal"]?.isNull == true)
        #expect(choice?["finish_reason"]?.string == "tool_calls")
        let call = choice?["message"]?["tool_calls"]?[0]
        #expect(call?["id"]?.string?.hasPrefix("call_") == true)
        #expect(call?["type"]?.string == "function")
        #expect(call?["function"]?["name"]?.string == "get_weather")
        #expect(call?["function"]?["arguments"]?.string == #"{"city":"Paris"}"#)
        #expect(completion["usage"] == Self.json(#"""
            {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17, "prompt_tokens_details": {"cached_tokens": 6},
             "completion_tokens_details": {"reasoning_tokens": 3}}
            """#))
    }

    @Test func finishReasonsAndABlockedPrompt() {
        #expect(GeminiToChat.finishReason("STOP", calledTools: false) == "stop")
        #expect(GeminiToChat.finishReason("MAX_TOKENS", calledTools: false) == "length")
        for reason in ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"] {
            #expect(GeminiToChat.finishReason(reason, calledTools: false) == "content_filter")
        }
        #expect(GeminiToChat.finishReason(nil, calledTools: true) == nil)

        let blocked = GeminiToChat.completion(Self.json(#"{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}"#),
                                              model: "g")
        #expect(blocked["choices"]?[0]?["finish_reason"]?.string == "content_filter")
        #expect(blocked["choices"]?[0]?["message"]?["content"]?.string == "")
        #expect(blocked["usage"]?["prompt_tokens"]?.int == 3)
        #expect(blocked["model"]?.string == "g")

        let two = GeminiToChat.completion(Self.json(#"""
            {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
                            {"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS", "index": 1}]}
            """#), model: "g")
        #expect(two["choices"]?.elements.map { $0["message"]?["content"]?.string ?? "" } == ["a", "b"])
        #expect(two["choices"]?[1]?["finish_reason"]?.string == "length")
        #expect(two["usage"]?["total_tokens"]?.int == 0)
    }

    // MARK: Streams

    static func translate(_ data: [String], includeUsage: Bool) throws -> (events: [SSEEvent], usage: Usage?) {
        let seen = UsageBox()
        var translator = GeminiToChatStream(model: "gemini-x", includeUsage: includeUsage) { seen.usage = $0 }
        var events: [SSEEvent] = []
        for text in data { events += try translator.translate(SSEEvent(data: text)) }
        events += try translator.finish()
        return (events, seen.usage)
    }

    final class UsageBox: @unchecked Sendable { var usage: Usage? }

    @Test func aStreamAsChunks() throws {
        let (events, usage) = try Self.translate([
            #"{"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}], "usageMetadata": {"promptTokenCount": 5}, "modelVersion": "gemini-x-001", "responseId": "r1"}"#,
            #"{"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {"a": 1}}}, {"functionCall": {"name": "g", "args": {}}}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 1}}"#,
        ], includeUsage: true)
        let chunks = events.compactMap(\.json)
        #expect(events.last?.isDone == true)
        #expect(chunks.allSatisfy { $0["id"]?.string == "chatcmpl-r1" && $0["object"]?.string == "chat.completion.chunk" })
        #expect(chunks.first?["choices"]?[0]?["delta"] == Self.json(#"{"role": "assistant", "content": ""}"#))
        #expect(chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.string }.joined() == "Hello")
        let calls = chunks.compactMap { $0["choices"]?[0]?["delta"]?["tool_calls"]?[0] }
        #expect(calls.map { $0["index"]?.int } == [0, 1])
        #expect(calls.allSatisfy { $0["id"]?.string?.hasPrefix("call_") == true && $0["type"]?.string == "function" })
        #expect(calls.map { $0["function"]?["arguments"]?.string } == [#"{"a":1}"#, "{}"])
        #expect(chunks.compactMap { $0["choices"]?[0]?["finish_reason"]?.string } == ["tool_calls"])
        let last = try #require(chunks.last)
        #expect(last["choices"]?.count == 0)
        #expect(last["usage"]?["completion_tokens"]?.int == 3)
        #expect(last["model"]?.string == "gemini-x-001")
        #expect(usage == Usage(inputTokens: 5, outputTokens: 3))

        // Without include_usage: no usage chunk, but the gateway still learns the usage.
        let (quiet, quietUsage) = try Self.translate([
            #"{"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}"#,
        ], includeUsage: false)
        #expect(!quiet.contains { $0.json?["usage"] != nil })
        #expect(quiet.compactMap { $0.json?["choices"]?[0]?["finish_reason"]?.string } == ["length"])
        #expect(quietUsage?.totalTokens == 2)
    }

    @Test func aStreamCutShortOrFailingIsAnError() {
        #expect(throws: UpstreamError.self) {
            _ = try Self.translate([#"{"candidates": [{"content": {"parts": [{"text": "x"}]}}]}"#], includeUsage: false)
        }
        #expect(throws: UpstreamError.self) { _ = try Self.translate([], includeUsage: false) }
        do {
            _ = try Self.translate([#"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}"#], includeUsage: false)
            Issue.record("no error")
        } catch let error as GatewayError {
            #expect(error.status == .tooManyRequests)
            #expect(error.message == "quota")
        } catch {
            Issue.record("unexpected \(error)")
        }
        let blocked = try? Self.translate([#"{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}"#], includeUsage: false)
        #expect(blocked?.events.compactMap { $0.json?["choices"]?[0]?["finish_reason"]?.string } == ["content_filter"])
    }

    // MARK: Errors and embeddings

    @Test func googlesErrorsAsTheClientSeesThem() {
        let limited = GeminiFailure.error(status: 429, headers: [:], body: ByteBuffer(string: #"""
            {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "29.2s"}]}}
            """#))
        #expect(limited.status == .tooManyRequests)
        #expect(limited.headers.first(name: "retry-after") == "30")
        #expect(limited.message == "Resource has been exhausted")

        let key = GeminiFailure.error(status: 400, headers: [:], body: ByteBuffer(string: #"""
            {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                       "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}
            """#))
        #expect(key.status == .badGateway)
        #expect(key.code == "upstream_auth_failed")

        let refused = GeminiFailure.error(status: 400, headers: [:], body: ByteBuffer(string: #"""
            {"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified", "status": "INVALID_ARGUMENT"}}
            """#))
        #expect(refused.status == .badRequest)
        #expect(refused.message == "* GenerateContentRequest.contents: contents is not specified")
        #expect(GeminiFailure.retryAfter("0.2s") == 1)
        #expect(GeminiFailure.retryAfter("soon") == nil)
    }

    @Test func embeddingsBothWays() throws {
        let asked = Self.json(#"{"model": "m", "input": ["a b", "c"], "dimensions": 3, "encoding_format": "base64"}"#)
        #expect(try GeminiEmbeddings.request(asked, model: "text-embedding-004", style: .batchEmbedContents) == Self.json(#"""
            {"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "a b"}]}, "outputDimensionality": 3},
                          {"model": "models/text-embedding-004", "content": {"parts": [{"text": "c"}]}, "outputDimensionality": 3}]}
            """#))
        #expect(try GeminiEmbeddings.request(asked, model: "e", style: .predict) == Self.json(#"""
            {"instances": [{"content": "a b"}, {"content": "c"}], "parameters": {"outputDimensionality": 3}}
            """#))
        let (answer, usage) = try GeminiEmbeddings.answer(Self.json(#"""
            {"predictions": [{"embeddings": {"values": [1.0, -2.0, 0.5], "statistics": {"token_count": 2}}},
                             {"embeddings": {"values": [0, 0, 0], "statistics": {"token_count": 1}}}]}
            """#), asked: asked, model: "e", style: .predict)
        // 1.0, -2.0, 0.5 as little-endian float32.
        #expect(answer["data"]?[0]?["embedding"]?.string == "AACAPwAAAMAAAAA/")
        #expect(answer["usage"] == Self.json(#"{"prompt_tokens": 3, "total_tokens": 3}"#))
        #expect(usage.inputTokens == 3)
        let floats = try GeminiEmbeddings.answer(Self.json(#"{"embeddings": [{"values": [0.25]}]}"#),
                                                 asked: Self.json(#"{"input": "x"}"#), model: "e", style: .batchEmbedContents).0
        #expect(floats["data"]?[0]?["embedding"] == Self.json("[0.25]"))
        #expect(floats["object"]?.string == "list")
        #expect(throws: GatewayError.self) { try GeminiEmbeddings.request(Self.json(#"{"input": [[1, 2]]}"#), model: "e", style: .predict) }
    }

    // MARK: On the wire

    /// An upstream answering as Gemini would: by the model in the path.
    static func upstream() async throws -> LocalHTTPServer {
        try await LocalHTTPServer.start { request in
            if request.uri.contains("status-429") {
                return .init(status: .tooManyRequests, body: #"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]}}"#)
            }
            if request.uri.contains("status-400") {
                return .json(#"{"error": {"code": 400, "message": "bad schema", "status": "INVALID_ARGUMENT"}}"#, status: .badRequest)
            }
            if request.uri.contains("status-403") {
                return .json(#"{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}"#, status: .forbidden)
            }
            if request.method == .GET { return .json(#"{"models": [{"name": "models/gemini-x"}]}"#) }
            if request.uri.contains(":batchEmbedContents") { return .json(#"{"embeddings": [{"values": [0.5, 0.25]}]}"#) }
            if request.uri.contains(":streamGenerateContent") {
                let events = [
                    #"{"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi "}]}, "index": 0}], "usageMetadata": {"promptTokenCount": 4}, "modelVersion": "gemini-x"}"#,
                    #"{"candidates": [{"content": {"role": "model", "parts": [{"text": "there"}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}, "modelVersion": "gemini-x"}"#,
                ]
                return .init(headers: ["content-type": "text/event-stream"], body: events.map { "data: \($0)\r\n\r\n" }.joined())
            }
            return .json(#"{"candidates": [{"content": {"role": "model", "parts": [{"text": "hi from gemini"}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}, "modelVersion": "gemini-x"}"#)
        }
    }

    static let models = ["m", "status-429", "status-400", "status-403", "e"]
        .map { #""\#($0)": {"targets": [{"provider": "g", "model": "\#($0 == "m" ? "gemini-x" : $0)"}]}"# }.joined(separator: ", ")

    static func withGemini(_ body: (TestGateway, LocalHTTPServer) async throws -> Void) async throws {
        try await withUpstream(try await upstream(), { url in
            #"{"g": {"plugin": "gemini", "config": {"base_url": "\#(url)/", "api_key": "g-key", "headers": {"x-org": "acme"}}}}"#
        }, models: models, body)
    }

    /// A gateway with the client key `client-key` in front of `providers` (given the upstream's URL).
    static func withUpstream(_ upstream: LocalHTTPServer, _ providers: (String) -> String, models: String,
                             _ body: (TestGateway, LocalHTTPServer) async throws -> Void) async throws {
        let manifest = """
            {"providers": \(providers(upstream.url)),
             "models": {\(models)},
             "pipeline": [{"plugin": "api-key-auth", "config": {"keys": [{"name": "client", "key": "client-key"}]}},
                          {"plugin": "router", "config": {"retries": 0}}]}
            """
        do { try await withGateway(manifest) { try await body($0, upstream) } } catch {
            await upstream.shutdown()
            throw error
        }
        await upstream.shutdown()
    }

    @Test func chatGoesToGenerateContentWithTheKey() async throws {
        try await Self.withGemini { gateway, upstream async throws in
            let body = chatBody("hello", [("temperature", 0.5)])
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body, headers: ProvidersTests.client)
            #expect(answer.status == .ok)
            #expect(answer.text == "hi from gemini")
            #expect(answer.body?["usage"]?["total_tokens"]?.int == 7)
            #expect(answer.headers.first(name: "x-sluice-provider") == "g")

            let sent = try #require(upstream.requests.last { $0.method == .POST })
            #expect(sent.uri == "/v1beta/models/gemini-x:generateContent")
            #expect(sent.headers.first(name: "x-goog-api-key") == "g-key")
            #expect(sent.headers.first(name: "x-org") == "acme")
            #expect(sent.headers.first(name: "authorization") == nil)
            #expect(!sent.headers.description.contains("client-key"))
            let json = try JSON.parse(sent.body)
            #expect(json["contents"]?[0]?["parts"]?[0]?["text"]?.string == "hello")
            #expect(json["generationConfig"]?["temperature"]?.double == 0.5)
            #expect(json["model"] == nil)

            let streamed = try await gateway.chat(model: "m", "hello", stream: true, headers: ProvidersTests.client)
            #expect(streamed.status == .ok)
            #expect(streamed.text == "Hi there")
            #expect(streamed.events?.last?.isDone == true)
            #expect(upstream.requests.last { $0.method == .POST }?.uri == "/v1beta/models/gemini-x:streamGenerateContent?alt=sse")

            // Anthropic's front door: the Kernel translates to chat completions, the provider to Gemini.
            let messages: JSON = ["model": "m", "max_tokens": 10, "system": "be brief", "messages": [["role": "user", "content": "hi"]]]
            let direct = try await gateway.send(.POST, "/v1/messages", body: messages, headers: ProvidersTests.client)
            #expect(direct.status == .ok)
            #expect(direct.body?["content"]?[0]?["text"]?.string == "hi from gemini")
            #expect(direct.body?["usage"]?["output_tokens"]?.int == 3)
            let translated = try JSON.parse(try #require(upstream.requests.last { $0.method == .POST }).body)
            #expect(translated["systemInstruction"]?["parts"]?[0]?["text"]?.string == "be brief")
            #expect(translated["generationConfig"]?["maxOutputTokens"]?.int == 10)

            let anthropicStream = try await gateway.send(.POST, "/v1/messages", body: ["model": "m", "max_tokens": 10, "stream": true,
                                                                                      "messages": [["role": "user", "content": "hi"]]],
                                                         headers: ProvidersTests.client)
            let deltas = anthropicStream.events?.compactMap { $0.json?["delta"]?["text"]?.string }.joined()
            #expect(deltas == "Hi there")
            #expect(anthropicStream.events?.last?.event == "message_stop")
        }
    }

    @Test func embeddingsAndFailures() async throws {
        try await Self.withGemini { gateway, upstream async throws in
            let embedded = try await gateway.send(.POST, "/v1/embeddings", body: ["model": "e", "input": "hello", "dimensions": 2],
                                                  headers: ProvidersTests.client)
            #expect(embedded.status == .ok)
            #expect(embedded.body?["data"]?[0]?["embedding"] == JSON.init(array: [0.5, 0.25]))
            let sent = try #require(upstream.requests.last { $0.method == .POST })
            #expect(sent.uri == "/v1beta/models/e:batchEmbedContents")
            #expect(try JSON.parse(sent.body)["requests"]?[0]?["outputDimensionality"]?.int == 2)

            let limited = try await gateway.chat(model: "status-429", "hi", headers: ProvidersTests.client)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers.first(name: "retry-after") == "12")
            let refused = try await gateway.chat(model: "status-400", "hi", headers: ProvidersTests.client)
            #expect(refused.status == .badRequest)
            #expect(refused.error?["message"]?.string == "bad schema")
            let denied = try await gateway.chat(model: "status-403", "hi", headers: ProvidersTests.client)
            #expect(denied.status == .badGateway)
            #expect(denied.bodyText?.contains("g-key") == false)
        }
    }

    @Test func theProbeListsOneModel() async throws {
        let upstream = try await Self.upstream()
        defer { Task { await upstream.shutdown() } }
        let config = JSON(object: [("api_key", "g-key"), ("base_url", JSON(upstream.url))])
        let provider = try GeminiProvider.build(config: PluginConfig(json: config, path: "providers.g.config"), context: try testContext())
        let result = await provider.probe()
        #expect(result?.isUp == true)
        #expect(result?.detail == "HTTP 200")
        #expect(upstream.requests.last?.uri == "/v1beta/models?pageSize=1")
        #expect(upstream.requests.last?.headers.first(name: "x-goog-api-key") == "g-key")
    }

    @Test func badConfigsAreRefused() async {
        let manifest = { (config: String) in
            """
            {"providers": {"g": {"plugin": "gemini", "config": \(config)}},
             "models": {"m": {"targets": [{"provider": "g", "model": "x"}]}}, "pipeline": [{"plugin": "router"}]}
            """
        }
        #expect(await manifestErrors(manifest(#"{"api_key": "k", "base_url": "ftp://x"}"#)).map(\.message)
                == [#"expected an http:// or https:// URL, got "ftp://x""#])
        #expect(await manifestErrors(manifest(#"{"api_key": "k", "api_version": "v1/../x"}"#)).map(\.path) == ["providers.g.config.api_version"])
        #expect(await manifestErrors(manifest(#"{}"#)).count == 1)
    }
}
