import Kernel
import KernelTesting
import Plugins
import Testing
@testable import AcmePlugins

/// The suites that build a gateway of Acme's plugins, nested in `AcmeGatewayTests`. Each test
/// has a gateway of its own, and reads the calls its scripted provider got from that gateway
/// (`gateway.calls`): the tests run in parallel.
@Suite struct AcmeGatewayTests {
    /// A gateway of the built-ins, the scripted provider and Acme's plugins; its provider
    /// answers `reply`.
    static func gateway(reply: String = "write to alice@example.com today", pipeline: String) async throws -> TestGateway {
        var registry = Builtins.registry()
        registry.register([ScriptedProvider.self, HeaderInjection.self, PIIMask.self])
        return try await TestGateway(manifest: """
            {"providers": {"p": {"plugin": "scripted", "config": {"reply": \(JSON(reply).description)}}},
             "models": {"m": {"targets": [{"provider": "p", "model": "acme-upstream"}]}},
             "pipeline": \(pipeline)}
            """, registry: registry)
    }

    @Suite struct PIIMaskTests {
        static func gateway(replacement: String? = nil) async throws -> TestGateway {
            let config = replacement.map { JSON(object: [("replacement", JSON($0))]) } ?? JSON.object()
            return try await AcmeGatewayTests.gateway(pipeline: """
                [{"plugin": "pii-mask", "config": \(config.description)}, {"plugin": "router", "config": {"retries": 0}}]
                """)
        }

        @Test func findsAddresses() {
            #expect(EmailAddress.masked(in: "Ask ann.lee+ai@mail.example.com.", with: "[email]") == "Ask [email].")
            #expect(EmailAddress.masked(in: "user@localhost, @handle, a@b.c", with: "[email]") == "user@localhost, @handle, a@b.c")
        }

        @Test func theProviderSeesTheMaskedPrompt() async throws {
            let gateway = try await Self.gateway()
            defer { Task { await gateway.shutdown() } }

            #expect(try await gateway.chat(model: "m", "I am bob@example.org, reply to me").status == .ok)
            let masked = try #require(gateway.calls.last)
            #expect(masked.request.body.json["messages"]?[0]?["content"]?.string == "I am [email], reply to me")
            #expect(masked.request.body.isModified)

            // Nothing to mask: the client's bytes go upstream as they came.
            _ = try await gateway.chat(model: "m", "nothing to hide")
            let untouched = try #require(gateway.calls.last)
            #expect(untouched.request.body.isModified == false)

            // Anthropic's front door, with content blocks; the scripted provider speaks Chat
            // Completions, so it gets the masked request translated.
            let messages = try JSON.parse(#"""
                {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": [{"type": "text", "text": "I am bob@example.org"}]}]}
                """#)
            #expect(try await gateway.send(.POST, "/v1/messages", body: messages).status == .ok)
            let blocks = try #require(gateway.calls.last)
            #expect(blocks.request.body.json["messages"]?[0]?["content"]?.string == "I am [email]")
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
