import Kernel
import KernelTesting
import NIOHTTP1
import Testing

/// `moderation` (Sources/Plugins/Guardrails) with a moderation model on 127.0.0.1
/// (`LocalHTTPServer`) reached through an `openai-compatible` provider of the manifest, and the
/// `POST /v1/moderations` front door.
@Suite struct ModerationTests {
    /// A moderation answer for each input: `violence` scored 0.9 when the text mentions a fight.
    static func answer(_ request: LocalHTTPServer.Request) -> LocalHTTPServer.Reply {
        guard let body = try? JSON.parse(request.body) else { return .json("{}", status: .badRequest) }
        let inputs = body["input"]?.string.map { [$0] } ?? body["input"]?.elements.compactMap(\.string) ?? []
        let results = inputs.map { text -> JSON in
            let violent = text.contains("fight")
            return ["flagged": JSON(violent), "categories": ["violence": JSON(violent), "harassment": false],
                    "category_scores": ["violence": JSON(violent ? 0.9 : 0.01), "harassment": 0.2]]
        }
        return .json((["id": "modr-1", "model": body["model"] ?? .null, "results": JSON(array: results)] as JSON).description)
    }

    static func withModeration(_ config: String, delay: Duration = .zero, keys: String? = nil,
                               _ body: (TestGateway, LocalHTTPServer) async throws -> Void) async throws {
        let service = try await LocalHTTPServer.start { request in
            var reply = Self.answer(request)
            reply.delay = delay
            return reply
        }
        let auth = keys.map { #"{"plugin": "api-key-auth", "config": {"keys": \#($0)}}, "# } ?? ""
        // A loaded machine (the whole suite runs in parallel) must not make the service late,
        // unless the test is about the timeout.
        let config = config.contains("timeout_s") ? config : String(config.dropLast()) + #", "timeout_s": 30}"#
        let manifest = #"""
            {"providers": {"p": {"plugin": "scripted", "config": {"reply": "a fight broke out"}},
                           "mod": {"plugin": "openai-compatible", "config": {"base_url": "\#(service.url)/v1", "api_key": "mod-key"}}},
             "models": {"m": {"targets": [{"provider": "p", "model": "up-m"}]},
                        "omni-moderation-latest": {"targets": [{"provider": "mod", "model": "omni-moderation-latest"}]}},
             "pipeline": [\#(auth){"plugin": "moderation", "config": \#(config)}, {"plugin": "router", "config": {"retries": 0}}]}
            """#
        do {
            try await withGateway(manifest) { try await body($0, service) }
        } catch {
            await service.shutdown()
            throw error
        }
        await service.shutdown()
    }

    @Test func blocksFlaggedRequests() async throws {
        try await Self.withModeration(#"{"provider": "mod"}"#) { gateway, service async throws in
            let refused = try await gateway.chat(model: "m", "let's fight")
            #expect(refused.status == .badRequest)
            #expect(refused.error?["code"]?.string == "content_flagged")
            #expect(refused.error?["message"]?.string?.contains("violence") == true)
            #expect(gateway.calls.isEmpty)
            let asked = try #require(service.requests.first { $0.uri == "/v1/moderations" })
            #expect(asked.uri == "/v1/moderations")
            #expect(asked.headers.first(name: "authorization") == "Bearer mod-key")
            #expect(try JSON.parse(asked.body)["model"]?.string == "omni-moderation-latest")

            #expect(try await gateway.chat(model: "m", "let's talk").status == .ok)
        }
    }

    @Test func thresholdsPerCategory() async throws {
        try await Self.withModeration(#"{"provider": "mod", "thresholds": {"harassment": 0.1}}"#) { gateway, _ async throws in
            // harassment scores 0.2 for every text: over this threshold; violence has none.
            #expect(try await gateway.chat(model: "m", "let's talk").status == .badRequest)
        }
        try await Self.withModeration(#"{"provider": "mod", "thresholds": {"violence": 0.95}}"#) { gateway, _ async throws in
            #expect(try await gateway.chat(model: "m", "let's fight").status == .ok)
        }
    }

    @Test func logOnlyAndAnswers() async throws {
        try await Self.withModeration(#"{"provider": "mod", "action": "log"}"#) { gateway, _ async throws in
            #expect(try await gateway.chat(model: "m", "let's fight").status == .ok)
        }
        try await Self.withModeration(#"{"provider": "mod", "stages": ["response"]}"#) { gateway, service async throws in
            // The scripted model answers "a fight broke out".
            #expect(try await gateway.chat(model: "m", "what happened?").status == .badRequest)
            #expect(service.requests.filter { $0.uri == "/v1/moderations" }.count == 1)
        }
    }

    @Test func aStreamedAnswerIsModeratedAfterItEnds() async throws {
        try await Self.withModeration(#"{"provider": "mod", "stages": ["response"]}"#) { gateway, service async throws in
            let streamed = try await gateway.chat(model: "m", "what happened?", stream: true)
            #expect(streamed.text == "a fight broke out")  // not held back: logged, never blocked
            // The check runs after the stream's end, off the request's path.
            for _ in 0..<500 where !service.requests.contains(where: { $0.uri == "/v1/moderations" }) { try await Task.sleep(for: .milliseconds(20)) }
            let question = try #require(service.requests.first { $0.uri == "/v1/moderations" })
            #expect(try JSON.parse(question.body)["input"]?[0]?.string == "a fight broke out")
        }
    }

    @Test func timeoutFailsOpenOrClosed() async throws {
        try await Self.withModeration(#"{"provider": "mod", "timeout_s": 0.2, "on_error": "deny"}"#, delay: .seconds(2)) { gateway, _ async throws in
            let refused = try await gateway.chat(model: "m", "hello")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.error?["code"]?.string == "moderation_unavailable")
        }
        try await Self.withModeration(#"{"provider": "mod", "timeout_s": 0.2, "on_error": "allow"}"#, delay: .seconds(2)) { gateway, _ async throws in
            #expect(try await gateway.chat(model: "m", "hello").status == .ok)
        }
    }

    @Test func perKeyOverrides() async throws {
        let keys = #"[{"name": "bot", "key": "key-bot"}, {"name": "lab", "key": "key-lab", "guardrails": {"moderation": {"action": "log"}}}]"#
        try await Self.withModeration(#"{"provider": "mod"}"#, keys: keys) { gateway, _ async throws in
            #expect(try await gateway.chat(model: "m", "fight", headers: ["authorization": "Bearer key-bot"]).status == .badRequest)
            #expect(try await gateway.chat(model: "m", "fight", headers: ["authorization": "Bearer key-lab"]).status == .ok)
        }
    }

    @Test func theModerationsFrontDoor() async throws {
        try await Self.withModeration(#"{"provider": "mod", "stages": []}"#) { gateway, service async throws in
            let answer = try await gateway.send(.POST, "/v1/moderations", body: ["model": "omni-moderation-latest", "input": "a fight"])
            #expect(answer.status == .ok)
            #expect(answer.body?["results"]?[0]?["flagged"]?.bool == true)
            #expect(service.requests.contains { $0.uri == "/v1/moderations" })
            // A model whose provider does not speak moderations.
            #expect(try await gateway.send(.POST, "/v1/moderations", body: ["model": "m", "input": "x"]).status == .badRequest)
        }
    }

    @Test func aProviderWithoutModerationsIsRefused() async throws {
        let errors = await manifestErrors(scriptedManifest(pipeline: #"[{"plugin": "moderation", "config": {"provider": "p"}}, {"plugin": "router"}]"#))
        #expect(errors.contains { $0.description.contains("does not serve /moderations") })
    }
}
