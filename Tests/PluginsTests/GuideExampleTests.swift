import Kernel
import KernelTesting
import NIOCore
import NIOHTTP1
import Plugins
import Testing

// The worked example of docs/PLUGINS.md: the `pii-mask` plugin and its tests. The guide quotes
// this file; change both together.

/// Replaces e-mail addresses with a marker: in the user's messages before any provider sees them,
/// and in the answer on its way back, whole or streamed event by event.
public struct PIIMask: Middleware {
    public static let name = "pii-mask"
    public static let summary = "replaces e-mail addresses in user messages and in answers"
    public static let configSchema = ConfigSchema([
        ConfigField("replacement", .string, default: "[email]", "what each e-mail address is replaced with"),
    ])

    let replacement: String

    public init(config: PluginConfig, context: PluginContext) throws {
        replacement = config.string("replacement") ?? "[email]"
        guard EmailAddress.masked(in: replacement, with: "") == replacement else {
            throw config.error("replacement", "must not itself contain an e-mail address")
        }
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation == .chatCompletions || request.operation == .messages else { return try await next(request) }
        var request = request
        maskUserMessages(in: &request.body)
        var response = try await next(request)
        switch response.body {
        case .whole(let bytes):
            guard bytes.readableBytesView.contains(UInt8(ascii: "@")),
                  let answer = try? JSON.parse(Array(bytes.readableBytesView)) else { return response }
            response.body = .whole(maskedAnswer(answer).encoded(using: request.context.allocator))
            response.headers.remove(name: "content-length")
        case .events(let events):
            response.body = .events(events.rewriting { maskedEvent($0) })
        }
        return response
    }

    func mask(_ text: String) -> String { EmailAddress.masked(in: text, with: replacement) }

    /// Masks the text of each user message: a string (OpenAI, Anthropic) or parts/blocks with
    /// `text`. Only a real change is written, so a body without addresses goes upstream as sent.
    func maskUserMessages(in body: inout RequestBody) {
        let messages = body.json["messages"]?.elements ?? []
        for (index, message) in messages.enumerated() where message["role"]?.string == "user" {
            if let text = message["content"]?.string {
                let masked = mask(text)
                if masked != text { body.json["messages"]?[index]?["content"] = JSON(masked) }
            }
            for (part, block) in (message["content"]?.elements ?? []).enumerated() {
                guard let text = block["text"]?.string else { continue }
                let masked = mask(text)
                if masked != text { body.json["messages"]?[index]?["content"]?[part]?["text"] = JSON(masked) }
            }
        }
    }

    /// A whole answer: OpenAI `choices[].message.content`, Anthropic `content[].text`.
    func maskedAnswer(_ answer: JSON) -> JSON {
        var answer = answer
        for (index, choice) in (answer["choices"]?.elements ?? []).enumerated() {
            if let text = choice["message"]?["content"]?.string { answer["choices"]?[index]?["message"]?["content"] = JSON(mask(text)) }
        }
        for (index, block) in (answer["content"]?.elements ?? []).enumerated() {
            if let text = block["text"]?.string { answer["content"]?[index]?["text"] = JSON(mask(text)) }
        }
        return answer
    }

    /// One stream event: OpenAI chunks' `choices[].delta.content`, Anthropic
    /// `content_block_delta`'s `delta.text`. Events without an "@" pass as they are, unparsed.
    func maskedEvent(_ event: SSEEvent) -> SSEEvent {
        guard event.data.utf8.contains(UInt8(ascii: "@")), var chunk = event.json else { return event }
        for (index, choice) in (chunk["choices"]?.elements ?? []).enumerated() {
            if let text = choice["delta"]?["content"]?.string { chunk["choices"]?[index]?["delta"]?["content"] = JSON(mask(text)) }
        }
        if let text = chunk["delta"]?["text"]?.string { chunk["delta"]?["text"] = JSON(mask(text)) }
        var masked = event
        masked.data = chunk.description
        return masked
    }
}

/// A hand-written matcher for `name@domain.tld` (ASCII), enough for the example.
enum EmailAddress {
    /// `text` with every address replaced by `replacement`.
    static func masked(in text: String, with replacement: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "@")) else { return text }
        let characters = Array(text)
        var result = ""
        var copied = 0  // characters[..<copied] are in `result` already
        for at in characters.indices where characters[at] == "@" && at >= copied {
            var start = at, end = at + 1
            while start > copied, isLocal(characters[start - 1]) { start -= 1 }
            while end < characters.count, isDomain(characters[end]) { end += 1 }
            while end > at + 1, characters[end - 1] == "." || characters[end - 1] == "-" { end -= 1 }  // "…@example.com." ends a sentence
            // A name before the "@"; after it a domain with a dot and a top level of two or more letters.
            guard start < at, let dot = characters[(at + 1)..<end].lastIndex(of: "."), dot > at + 1, end - dot > 2,
                  characters[(dot + 1)..<end].allSatisfy(isLetter) else { continue }
            result += String(characters[copied..<start]) + replacement
            copied = end
        }
        return result + String(characters[copied...])
    }

    static func isLetter(_ c: Character) -> Bool { c.isASCII && c.isLetter }
    static func isLocal(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || "._%+-".contains(c)) }
    static func isDomain(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-") }
}

// `ScriptedProvider.calls` is one list for the whole test process, and PipelineInProcessTests
// counts it: nesting these tests in that `.serialized` suite keeps the two from running at once.
extension PipelineInProcessTests {
    @Suite struct PIIMaskTests {
        /// A gateway whose provider answers "write to alice@example.com today".
        static func gateway(replacement: String? = nil) async throws -> TestGateway {
            var registry = Builtins.registry()
            registry.register(ScriptedProvider.self)
            registry.register(PIIMask.self)
            let config = replacement.map { JSON(object: [("replacement", JSON($0))]) } ?? JSON.object()
            return try await TestGateway(manifest: """
                {"providers": {"p": {"plugin": "scripted", "config": {"reply": "write to alice@example.com today"}}},
                 "models": {"m": {"targets": [{"provider": "p", "model": "pii-upstream"}]}},
                 "pipeline": [{"plugin": "pii-mask", "config": \(config.description)},
                              {"plugin": "router", "config": {"retries": 0}}]}
                """, registry: registry)
        }

        /// The last call the scripted provider got from these tests.
        static func lastCall() -> ProviderCall? {
            ScriptedProvider.calls.withLockedValue { calls in calls.last(where: { $0.upstreamModel == "pii-upstream" }) }
        }

        @Test func findsAddresses() {
            #expect(EmailAddress.masked(in: "Ask ann.lee+ai@mail.example.com.", with: "[email]") == "Ask [email].")
            #expect(EmailAddress.masked(in: "user@localhost, @handle, a@b.c", with: "[email]") == "user@localhost, @handle, a@b.c")
        }

        @Test func theProviderSeesTheMaskedPrompt() async throws {
            let gateway = try await Self.gateway()
            defer { Task { await gateway.shutdown() } }

            #expect(try await gateway.chat(model: "m", "I am bob@example.org, reply to me").status == .ok)
            let masked = try #require(Self.lastCall())
            #expect(masked.request.body.json["messages"]?[0]?["content"]?.string == "I am [email], reply to me")
            #expect(masked.request.body.isModified)

            // Nothing to mask: the client's bytes go upstream as they came.
            _ = try await gateway.chat(model: "m", "nothing to hide")
            let untouched = try #require(Self.lastCall())
            #expect(untouched.request.body.isModified == false)

            // Anthropic's front door, with content blocks.
            let messages = try JSON.parse(#"""
                {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": [{"type": "text", "text": "I am bob@example.org"}]}]}
                """#)
            #expect(try await gateway.send(.POST, "/v1/messages", body: messages).status == .ok)
            let blocks = try #require(Self.lastCall())
            #expect(blocks.request.body.json["messages"]?[0]?["content"]?[0]?["text"]?.string == "I am [email]")
        }

        @Test func masksWholeAndStreamedAnswers() async throws {
            let gateway = try await Self.gateway()
            defer { Task { await gateway.shutdown() } }

            let whole = try await gateway.chat(model: "m", "where do I write?")
            #expect(whole.status == .ok)
            #expect(whole.text == "write to [email] today")

            let streamed = try await gateway.chat(model: "m", "where do I write?", stream: true)
            #expect(streamed.status == .ok)
            #expect(streamed.text == "write to [email] today")
            #expect(streamed.events?.last?.isDone == true)
        }

        @Test func readsAndChecksItsConfig() async throws {
            let custom = try await Self.gateway(replacement: "<hidden>")
            defer { Task { await custom.shutdown() } }
            #expect(try await custom.chat(model: "m", "hi").text == "write to <hidden> today")

            do {
                let refused = try await Self.gateway(replacement: "me@example.com")
                await refused.shutdown()
                Issue.record("a replacement that is itself an address was accepted")
            } catch let errors as ManifestErrors {
                #expect(errors.errors.map(\.path) == ["pipeline[0].config.replacement"])
            }
        }
    }
}
