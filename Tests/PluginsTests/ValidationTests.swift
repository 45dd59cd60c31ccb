import Kernel
import KernelTesting
import NIOHTTP1
import Testing

/// `validation` (Sources/Plugins/Validation) through an in-process gateway: each refusal is a
/// 400 in the front door's shape naming the field at fault, and never reaches the provider.
@Suite struct ValidationTests {
    static func manifest(_ config: String = "{}") -> String {
        scriptedManifest(pipeline: #"[{"plugin": "validation", "config": \#(config)}, {"plugin": "router", "config": {"retries": 0}}]"#)
    }

    static func messages(_ json: String) throws -> JSON {
        try JSON.parse(#"{"model": "m", "messages": \#(json)}"#)
    }

    /// Sends `body` to the chat front door; expects a 400 naming `param`, the provider untouched.
    static func expectRefusal(_ gateway: TestGateway, _ body: JSON, param: String, message: String? = nil,
                              path: String = "/v1/chat/completions", sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let before = gateway.calls.count
        let answer = try await gateway.send(.POST, path, body: body)
        #expect(answer.status == .badRequest, "\(body)", sourceLocation: sourceLocation)
        let error = path == "/v1/messages" ? answer.body?["error"] : answer.error
        #expect(error?["type"]?.string == "invalid_request_error", sourceLocation: sourceLocation)
        if path != "/v1/messages" {
            #expect(error?["param"]?.string == param, "\(answer.body ?? .null)", sourceLocation: sourceLocation)
            #expect(error?["code"]?.string == "invalid_value", sourceLocation: sourceLocation)
        }
        // Anthropic's error shape has no `param`: its message names the field.
        let expected = path == "/v1/messages" ? message.map { "\(param): \($0)" } : message
        if let expected { #expect(error?["message"]?.string == expected, sourceLocation: sourceLocation) }
        #expect(gateway.calls.count == before, "the provider was called", sourceLocation: sourceLocation)
    }

    @Test func rolesAndContent() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "robot", "content": "hi"}]"#), param: "messages[0].role",
                                         message: "role must be one of system, developer, user, assistant, tool")
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "user"}]"#), param: "messages[0].content")
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "user", "content": 3}]"#), param: "messages[0].content")
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "user", "content": "hi"}, {"role": "assistant"}]"#),
                                         param: "messages[1].content", message: "an assistant message needs content or tool_calls")
            try await Self.expectRefusal(gateway, try Self.messages(#"["hi"]"#), param: "messages[0]")

            let fine = try Self.messages(#"[{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]"#)
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: fine).status == .ok)
            #expect(gateway.calls.count == 1)
        }
    }

    @Test func toolMessagesAnswerTheAssistantsCalls() async throws {
        let call = #"{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}"#
        try await withGateway(Self.manifest()) { gateway async throws in
            let answered = try Self.messages(#"[{"role": "user", "content": "hi"}, \#(call), {"role": "tool", "tool_call_id": "call_1", "content": "42"}]"#)
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: answered).status == .ok)

            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "user", "content": "hi"}, \#(call), {"role": "tool", "tool_call_id": "call_2", "content": "42"}]"#),
                                         param: "messages[2].tool_call_id",
                                         message: "a tool message must answer a tool call of the assistant message before it")
            try await Self.expectRefusal(gateway, try Self.messages(#"[\#(call), {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]"#),
                                         param: "messages[2].tool_call_id")
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "user", "content": "hi"}, {"role": "tool", "content": "42"}]"#),
                                         param: "messages[1].tool_call_id")
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]"#),
                                         param: "messages[0].tool_calls[0]", message: "a tool call needs an id and function.name")
            var tools = try Self.messages(#"[{"role": "user", "content": "hi"}]"#)
            tools["tools"] = try JSON.parse(#"[{"type": "function", "function": {"name": "f"}}, {"type": "retrieval"}]"#)
            try await Self.expectRefusal(gateway, tools, param: "tools[1].type")
        }
    }

    @Test func maxTokensAboveTheCapIsRefused() async throws {
        try await withGateway(Self.manifest(#"{"max_tokens_cap": 100}"#)) { gateway async throws in
            try await Self.expectRefusal(gateway, chatBody("hi", [("max_tokens", 200)]), param: "max_tokens",
                                         message: "max_tokens is 200; this gateway accepts at most 100")
            try await Self.expectRefusal(gateway, chatBody("hi", [("max_completion_tokens", 101)]), param: "max_completion_tokens")
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: chatBody("hi", [("max_tokens", 100)])).status == .ok)
            #expect(gateway.calls.last?.request.body.json["max_tokens"]?.int == 100)
        }
    }

    @Test func maxTokensAboveTheCapIsClampedWhenAsked() async throws {
        try await withGateway(Self.manifest(#"{"max_tokens_cap": 100, "clamp": true}"#)) { gateway async throws in
            let answer = try await gateway.send(.POST, "/v1/chat/completions",
                                                body: chatBody("hi", [("max_tokens", 5000), ("max_completion_tokens", 7000)]))
            #expect(answer.status == .ok)
            let sent = try #require(gateway.calls.last).request.body.json
            #expect(sent["max_tokens"]?.int == 100)
            #expect(sent["max_completion_tokens"]?.int == 100)
            #expect(sent["messages"]?[0]?["content"]?.string == "hi")
            // Anthropic's front door too.
            let messages: JSON = ["model": "m", "max_tokens": 4096, "messages": [["role": "user", "content": "hi"]]]
            #expect(try await gateway.send(.POST, "/v1/messages", body: messages).status == .ok)
            #expect(gateway.calls.last?.request.body.json["max_tokens"]?.int == 100)
        }
    }

    @Test func blockedAndAllowedParameters() async throws {
        try await withGateway(Self.manifest(#"{"blocked_params": ["logit_bias", "seed"]}"#)) { gateway async throws in
            try await Self.expectRefusal(gateway, chatBody("hi", [("seed", 7)]), param: "seed",
                                         message: "the parameter seed is not allowed on this gateway")
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: chatBody("hi", [("temperature", 0.5)])).status == .ok)
        }
        try await withGateway(Self.manifest(#"{"allowed_params": ["messages", "temperature"]}"#)) { gateway async throws in
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: chatBody("hi", [("temperature", 0.5)])).status == .ok)
            try await Self.expectRefusal(gateway, chatBody("hi", [("top_p", 0.5)]), param: "top_p")
            try await Self.expectRefusal(gateway, chatBody("hi", [("stream", true)]), param: "stream")
        }
    }

    @Test func messageCountAndSize() async throws {
        try await withGateway(Self.manifest(#"{"max_messages": 2, "max_total_chars": 10}"#)) { gateway async throws in
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]"#),
                                         param: "messages", message: "at most 2 messages are accepted, got 3")
            try await Self.expectRefusal(gateway, try Self.messages(#"[{"role": "system", "content": "hello"}, {"role": "user", "content": [{"type": "text", "text": "world!"}]}]"#),
                                         param: "messages", message: "the messages hold 11 characters; at most 10 are accepted")
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: chatBody("0123456789")).status == .ok)
        }
    }

    @Test func otherChatFields() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            try await Self.expectRefusal(gateway, chatBody("hi", [("stop", ["a", "b", "c", "d", "e"])]), param: "stop")
            try await Self.expectRefusal(gateway, chatBody("hi", [("user", 5)]), param: "user")
            try await Self.expectRefusal(gateway, chatBody("hi", [("logprobs", "yes")]), param: "logprobs")
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: chatBody("hi", [("stop", ["a", "b"])])).status == .ok)
        }
    }

    @Test func anthropicMessages() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let assistantFirst = try JSON.parse(#"{"model": "m", "max_tokens": 10, "messages": [{"role": "assistant", "content": "hi"}]}"#)
            let refused = try await gateway.send(.POST, "/v1/messages", body: assistantFirst)
            #expect(refused.status == .badRequest)
            #expect(refused.body?["type"]?.string == "error")
            #expect(refused.body?["error"]?["type"]?.string == "invalid_request_error")
            #expect(refused.body?["error"]?["message"]?.string == "messages[0].role: the first message must have the user role")

            try await Self.expectRefusal(gateway, try JSON.parse(#"{"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"text": "hi"}]}]}"#),
                                         param: "messages[0].content[0].type", message: "each content block needs a type", path: "/v1/messages")
            try await Self.expectRefusal(gateway, try JSON.parse(#"{"model": "m", "max_tokens": 10, "system": 5, "messages": [{"role": "user", "content": "hi"}]}"#),
                                         param: "system", message: "system must be a string or an array of text blocks", path: "/v1/messages")
            try await Self.expectRefusal(gateway, try JSON.parse(#"{"model": "m", "max_tokens": 10, "tools": [{"name": "f"}], "messages": [{"role": "user", "content": "hi"}]}"#),
                                         param: "tools[0].input_schema", message: "a tool needs an input_schema object", path: "/v1/messages")
        }
    }

    @Test func embeddingsInput() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            for input: JSON in ["", [], [1, "a"], [[]], 5] {
                try await Self.expectRefusal(gateway, ["model": "m", "input": input], param: "input",
                                             message: "input must be a non-empty string, array of strings, or array of token arrays",
                                             path: "/v1/embeddings")
            }
            try await Self.expectRefusal(gateway, ["model": "m", "input": "hi", "encoding_format": "int8"], param: "encoding_format",
                                         path: "/v1/embeddings")
        }
    }
}
