import Kernel
import KernelTesting
import NIOHTTP1
import Foundation
import Testing
@testable import Plugins

/// `pii` (Sources/Plugins/Guardrails) on requests, whole answers and streams, in each front
/// door's format, and per key.
@Suite struct PIIGuardTests {
    static let secretValue = "sk-proj-abc123DEF456ghi789JKL012mno345PQR678"

    static func manifest(_ config: String = "{}", reply: String = "hello from the script", keys: String? = nil) -> String {
        let auth = keys.map { #"{"plugin": "api-key-auth", "config": {"keys": \#($0)}}, "# } ?? ""
        return scriptedManifest(pipeline: #"[\#(auth){"plugin": "pii", "config": \#(config)}, {"plugin": "router", "config": {"retries": 0}}]"#,
                                provider: #"{"reply": \#(JSON(reply).description)}"#)
    }

    @Test func redactsTheRequestWithNumberedPlaceholders() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let text = "I am bob@example.org (again: bob@example.org), my colleague is ann@example.com, card 4111 1111 1111 1111"
            #expect(try await gateway.chat(model: "m", text).status == .ok)
            let sent = try #require(gateway.calls.last).request.body.json["messages"]?[0]?["content"]?.string
            #expect(sent == "I am [EMAIL_1] (again: [EMAIL_1]), my colleague is [EMAIL_2], card [CARD_1]")

            _ = try await gateway.chat(model: "m", "nothing to hide")
            #expect(try #require(gateway.calls.last).request.body.isModified == false)
        }
    }

    @Test func blocksWithoutEchoingTheValue() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let refused = try await gateway.chat(model: "m", "use \(Self.secretValue) for it")
            #expect(refused.status == .badRequest)
            #expect(refused.error?["code"]?.string == "pii_detected")
            let message = try #require(refused.error?["message"]?.string)
            #expect(message.contains("secret"))
            #expect(!message.contains("sk-proj"))
            #expect(gateway.calls.isEmpty)

            // Anthropic's front door answers in its own shape.
            let body = try JSON.parse(#"{"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "text", "text": "key \#(Self.secretValue)"}]}]}"#)
            let anthropic = try await gateway.send(.POST, "/v1/messages", body: body)
            #expect(anthropic.status == .badRequest)
            #expect(anthropic.body?["type"]?.string == "error")
            #expect(anthropic.body?["error"]?["type"]?.string == "invalid_request_error")
        }
    }

    @Test func everyFrontDoorsTextIsCovered() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let messages = try JSON.parse(#"""
                {"model": "m", "max_tokens": 8, "system": "operator: ops@example.com",
                 "messages": [{"role": "user", "content": [{"type": "text", "text": "me: a1@example.com"},
                    {"type": "tool_result", "tool_use_id": "t", "content": "found b2@example.com"}]}]}
                """#)
            #expect(try await gateway.send(.POST, "/v1/messages", body: messages).status == .ok)
            let translated = try #require(gateway.calls.last).request.body.json.description
            #expect(!translated.contains("@example.com"))
            #expect(translated.contains("[EMAIL_1]") && translated.contains("[EMAIL_3]"))

            let responses = try JSON.parse(#"""
                {"model": "m", "instructions": "signed c3@example.com",
                 "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi d4@example.com"}]},
                           {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
                           {"type": "function_call_output", "call_id": "c1", "output": "e5@example.com"}]}
                """#)
            // The texts are read as the plugin reads them, and a secret in a tool output is refused.
            #expect(RequestText.collect(responses, operation: .responses) == ["signed c3@example.com", "hi d4@example.com", "e5@example.com"])
            var body = RequestBody(json: responses)
            RequestText.rewrite(&body, operation: .responses) { $0.replacingOccurrences(of: "@example.com", with: "@x") }
            #expect(!body.json.description.contains("@example.com"))
            var withSecret = responses
            withSecret["input"]?[2]?["output"] = JSON("token \(Self.secretValue)")
            let refused = try await gateway.send(.POST, "/v1/responses", body: withSecret)
            #expect(refused.status == .badRequest)
            #expect(refused.error?["code"]?.string == "pii_detected")

            let tool = try JSON.parse(#"""
                {"model": "m", "messages": [{"role": "user", "content": "look up"},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "SSN 123-45-6789"}]}
                """#)
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: tool).status == .ok)
            #expect(try #require(gateway.calls.last).request.body.json["messages"]?[2]?["content"]?.string == "SSN [SSN_1]")
        }
    }

    @Test func redactsWholeAndStreamedAnswers() async throws {
        try await withGateway(Self.manifest(reply: "reach carol@example.com or +44 20 7946 0958")) { gateway async throws in
            #expect(try await gateway.chat(model: "m", "who?").text == "reach [EMAIL_1] or [PHONE_1]")
            let streamed = try await gateway.chat(model: "m", "who?", stream: true)
            #expect(streamed.text == "reach [EMAIL_1] or [PHONE_1]")
            #expect(streamed.events?.last?.isDone == true)
        }
    }

    @Test func restorePutsTheValuesBackForTheSameClient() async throws {
        // The scripted model repeats the placeholder it was given (split over word chunks when streamed).
        let config = #"{"detectors": {"email": "restore"}}"#
        try await withGateway(Self.manifest(config, reply: "I will write to [EMAIL_1] today")) { gateway async throws in
            let whole = try await gateway.chat(model: "m", "write to dana@example.com")
            #expect(try #require(gateway.calls.last).request.body.json["messages"]?[0]?["content"]?.string == "write to [EMAIL_1]")
            #expect(whole.text == "I will write to dana@example.com today")
            let streamed = try await gateway.chat(model: "m", "write to dana@example.com", stream: true)
            #expect(streamed.text == "I will write to dana@example.com today")
            // Another request has its own placeholders: nothing to restore there.
            #expect(try await gateway.chat(model: "m", "hello").text == "I will write to [EMAIL_1] today")
        }
    }

    @Test func perKeyPolicies() async throws {
        let keys = #"""
            [{"name": "support-bot", "key": "key-support"},
             {"name": "internal", "key": "key-internal", "guardrails": {"pii": {"email": "log", "secret": "redact"}}},
             {"name": "trusted", "key": "key-trusted", "guardrails": {"pii": false}}]
            """#
        try await withGateway(Self.manifest(keys: keys)) { gateway async throws in
            let text = "mail eve@example.com key \(Self.secretValue)"
            let support = try await gateway.chat(model: "m", text, headers: ["authorization": "Bearer key-support"])
            #expect(support.status == .badRequest)

            #expect(try await gateway.chat(model: "m", text, headers: ["authorization": "Bearer key-internal"]).status == .ok)
            #expect(try #require(gateway.calls.last).request.body.json["messages"]?[0]?["content"]?.string == "mail eve@example.com key [SECRET_1]")

            #expect(try await gateway.chat(model: "m", text, headers: ["authorization": "Bearer key-trusted"]).status == .ok)
            #expect(try #require(gateway.calls.last).request.body.json["messages"]?[0]?["content"]?.string == text)
        }
    }

    @Test func badConfigIsRefusedWithItsPath() async throws {
        let errors = await manifestErrors(Self.manifest(#"{"detectors": {"email": "hide"}}"#))
        #expect(errors.contains { $0.description.contains("pipeline[0].config.detectors.email") })
        let keyErrors = await manifestErrors(Self.manifest(keys: #"[{"name": "a", "key": "k", "guardrails": {"pii": "yes"}}]"#))
        #expect(keyErrors.contains { $0.description.contains("keys[0].guardrails.pii") })
        // A key's own policy is checked when the manifest is loaded, not when the key's first request comes.
        let actionErrors = await manifestErrors(Self.manifest(keys: #"[{"name": "a", "key": "k", "guardrails": {"pii": {"email": "shout"}}}]"#))
        #expect(actionErrors.map(\.path) == ["pipeline[0].config.keys[0].guardrails.pii.email"], "\(actionErrors)")
    }

    // MARK: Streams split at every offset

    static let streamedText = "Mail alice@example.com, call +1 415 555 0100, key \(secretValue), IBAN DE89 3704 0044 0532 0130 00 ok"
    static let redactedText = "Mail [EMAIL_1], call [PHONE_1], key [SECRET_1], IBAN [IBAN_1] ok"

    static func engine(_ actions: [PIIDetector: PIIAction] = [.email: .redact, .phone: .redact, .secret: .redact, .iban: .redact]) -> PIIEngine {
        PIIEngine(policy: PIIPolicy(actions: actions), state: PIIRequestState())
    }

    static func run(_ events: [SSEEvent], engine: PIIEngine, window: Int = 64) async throws -> [SSEEvent] {
        let stream = EventStream(events).translating { GuardedTextStream(PIIStreamFilter(engine: engine, window: window, maxHold: 4096) {}) }
        var out: [SSEEvent] = []
        for try await event in stream { out.append(event) }
        return out
    }

    static func chatEvents(_ pieces: [String]) -> [SSEEvent] {
        pieces.map { SSEEvent(data: (["id": "c", "object": "chat.completion.chunk", "choices": [["index": 0, "delta": ["content": JSON($0)], "finish_reason": .null]]] as JSON).description) }
            + [SSEEvent(data: #"{"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}"#), .done]
    }

    static func messagesEvents(_ pieces: [String]) -> [SSEEvent] {
        [SSEEvent(event: "content_block_start", data: #"{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}"#)]
            + pieces.map { SSEEvent(event: "content_block_delta", data: (["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": JSON($0)]] as JSON).description) }
            + [SSEEvent(event: "content_block_stop", data: #"{"type": "content_block_stop", "index": 0}"#),
               SSEEvent(event: "message_stop", data: #"{"type": "message_stop"}"#)]
    }

    static func responsesEvents(_ pieces: [String], whole: String) -> [SSEEvent] {
        var number = 0
        func event(_ json: JSON) -> SSEEvent {
            var json = json
            json["sequence_number"] = JSON(number)
            number += 1
            return SSEEvent(event: json["type"]?.string, data: json.description)
        }
        let part: JSON = ["type": "output_text", "text": JSON(whole), "annotations": []]
        let item: JSON = ["id": "msg_1", "type": "message", "role": "assistant", "status": "completed", "content": [part]]
        return pieces.map { event(["type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": JSON($0)]) }
            + [event(["type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "text": JSON(whole)]),
               event(["type": "response.content_part.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "part": part]),
               event(["type": "response.output_item.done", "output_index": 0, "item": item]),
               event(["type": "response.completed", "response": ["id": "resp_1", "object": "response", "status": "completed", "output": [item]]])]
    }

    static func text(of events: [SSEEvent]) -> String {
        events.compactMap { event -> String? in
            guard let json = event.json else { return nil }
            return json["choices"]?[0]?["delta"]?["content"]?.string ?? json["delta"]?["text"]?.string
                ?? (json["type"]?.string == "response.output_text.delta" ? json["delta"]?.string : nil)
        }.joined()
    }

    /// Every split of the text in two, and every character its own chunk: the client sees the
    /// redacted text and never a piece of a value.
    @Test(arguments: ["chat", "messages", "responses"])
    func valuesSplitAtEveryOffsetAreRedacted(format: String) async throws {
        let bytes = Array(Self.streamedText.utf8)
        var splits = (1..<bytes.count).map { [String(decoding: bytes[..<$0], as: UTF8.self), String(decoding: bytes[$0...], as: UTF8.self)] }
        splits.append(Self.streamedText.map(String.init))
        for pieces in splits {
            let events: [SSEEvent] = switch format {
            case "chat": Self.chatEvents(pieces)
            case "messages": Self.messagesEvents(pieces)
            default: Self.responsesEvents(pieces, whole: Self.streamedText)
            }
            let out = try await Self.run(events, engine: Self.engine())
            #expect(Self.text(of: out) == Self.redactedText, "split \(pieces.count == 2 ? String(pieces[0].utf8.count) : "per character")")
            for event in out {
                for leak in ["alice", "415 555", "abc123DEF", "3704 0044"] where event.data.contains(leak) {
                    Issue.record("\(format): \(leak) reached the client in \(event.data)")
                }
            }
            if format == "responses" {
                let numbers = out.compactMap { $0.json?["sequence_number"]?.int }
                #expect(numbers == Array(0..<numbers.count), "sequence numbers \(numbers)")
                let completed = try #require(out.last?.json)
                #expect(completed["response"]?["output"]?[0]?["content"]?[0]?["text"]?.string == Self.redactedText)
            }
        }
    }

    @Test func restoreAcrossChunksAtEveryOffset() async throws {
        let engine = Self.engine([.email: .restore])
        _ = try engine.process("mail zoe@example.com", stage: .request)  // the request side numbers it [EMAIL_1]
        let answer = "Sent to [EMAIL_1] as asked."
        let bytes = Array(answer.utf8)
        for cut in 1..<bytes.count {
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            let out = try await Self.run(Self.chatEvents(pieces), engine: engine)
            #expect(Self.text(of: out) == "Sent to zoe@example.com as asked.")
        }
    }

    @Test func aBlockedValueEndsTheStreamWithAnError() async throws {
        let out = try? await Self.run(Self.chatEvents(["key ", "sk-proj-abc123DEF4", "56ghi789JKL012mno345PQR678 done"]), engine: Self.engine([.secret: .block]))
        #expect(out == nil)  // the translator threw; the front door turns that into an error event
    }

    @Test func aLongPrivateKeyIsSwallowedWhole() async throws {
        let body = (0..<200).map { _ in "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn" }.joined(separator: "\n")
        let pem = "-----BEGIN RSA PRIVATE KEY-----\n\(body)\n-----END RSA PRIVATE KEY-----"
        let text = "here: \(pem) done"
        let pieces = stride(from: 0, to: text.utf8.count, by: 50).map { String(decoding: Array(text.utf8)[$0..<min($0 + 50, text.utf8.count)], as: UTF8.self) }
        let out = try await Self.run(Self.chatEvents(pieces), engine: Self.engine([.secret: .redact]))
        #expect(Self.text(of: out) == "here: [SECRET_1] done")
    }
}
