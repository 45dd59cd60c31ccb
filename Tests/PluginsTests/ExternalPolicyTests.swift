import Kernel
import KernelTesting
import NIOHTTP1
import Testing

/// `external` (Sources/Plugins/External) through an in-process gateway, with a policy service
/// on 127.0.0.1 (`LocalHTTPServer`) reached through the Kernel's upstream client.
@Suite struct ExternalPolicyTests {
    static func manifest(_ config: String) -> String {
        scriptedManifest(pipeline: #"""
            [{"plugin": "api-key-auth", "config": {"keys": [{"name": "a", "key": "key-a"}]}},
             {"plugin": "external", "config": \#(config)},
             {"plugin": "router", "config": {"retries": 0}}]
            """#)
    }

    static let auth: HTTPHeaders = ["authorization": "Bearer key-a", "x-request-id": "policy-test-1"]

    /// Runs `body` with a policy service answering `verdict` (JSON text) and a gateway asking it.
    static func withPolicy(_ verdict: String, status: HTTPResponseStatus = .ok, delay: Duration = .zero, config: String = "",
                           _ body: (TestGateway, LocalHTTPServer) async throws -> Void) async throws {
        let service = try await LocalHTTPServer.start { _ in LocalHTTPServer.Reply(status: status, body: verdict, delay: delay) }
        // A loaded machine (the whole suite runs in parallel) must not make a test's service late.
        let config = config.contains("timeout_s") ? config : config + #", "timeout_s": 30"#
        do {
            try await withGateway(Self.manifest(#"{"url": "\#(service.url)/check"\#(config)}"#)) { try await body($0, service) }
        } catch {
            await service.shutdown()
            throw error
        }
        await service.shutdown()
    }

    @Test func allowSendsTheRequestToTheService() async throws {
        try await Self.withPolicy(#"{"action": "allow"}"#, config: #", "headers": {"x-policy-token": "t0ken"}"#) { gateway, service async throws in
            let answer = try await gateway.chat(model: "m", "hello", headers: Self.auth)
            #expect(answer.status == .ok)
            #expect(answer.text == "hello from the script")
            let asked = try #require(service.requests.first)
            #expect(service.requests.count == 1)
            #expect(asked.method == .POST)
            #expect(asked.uri == "/check")
            #expect(asked.headers.first(name: "content-type") == "application/json")
            #expect(asked.headers.first(name: "x-policy-token") == "t0ken")
            #expect(asked.headers.first(name: "x-request-id") == "policy-test-1")
            let question = try JSON.parse(asked.body)
            #expect(question["stage"]?.string == "request")
            #expect(question["request_id"]?.string == "policy-test-1")
            #expect(question["operation"]?.string == "chat.completions")
            #expect(question["front_door"]?.string == "openai")
            #expect(question["model"]?.string == "m")
            #expect(question["key_name"]?.string == "a")
            #expect(question["body"]?["messages"]?[0]?["content"]?.string == "hello")
            #expect(question["response"] == nil)
            #expect(!asked.text.contains("key-a"))
        }
    }

    @Test func denyRefusesBeforeTheProvider() async throws {
        try await Self.withPolicy(#"{"action": "deny", "message": "no talk of cats"}"#) { gateway, _ async throws in
            let refused = try await gateway.chat(model: "m", "cats?", headers: Self.auth)
            #expect(refused.status == .forbidden)
            #expect(refused.error?["type"]?.string == "permission_error")
            #expect(refused.error?["code"]?.string == "policy_denied")
            #expect(refused.error?["message"]?.string == "no talk of cats")
            #expect(gateway.calls.isEmpty)
            // Anthropic's front door gets its own shape.
            let messages: JSON = ["model": "m", "max_tokens": 10, "messages": [["role": "user", "content": "cats?"]]]
            let anthropic = try await gateway.send(.POST, "/v1/messages", body: messages, headers: Self.auth)
            #expect(anthropic.status == .forbidden)
            #expect(anthropic.body?["error"]?["type"]?.string == "permission_error")
        }
        try await Self.withPolicy(#"{"action": "deny", "status": 422}"#) { gateway, _ async throws in
            let refused = try await gateway.chat(model: "m", "hi", headers: Self.auth)
            #expect(refused.status == .unprocessableEntity)
            #expect(refused.error?["type"]?.string == "invalid_request_error")
            #expect(refused.error?["message"]?.string == "The request was refused by policy.")
        }
        try await Self.withPolicy(#"{"action": "deny", "status": 200}"#) { gateway, _ async throws in
            #expect(try await gateway.chat(model: "m", "hi", headers: Self.auth).status == .forbidden)
        }
    }

    @Test func aPatchChangesTheRequest() async throws {
        let patch = #"{"action": "allow", "patch": {"temperature": 0.1, "messages": [{"role": "user", "content": "[redacted]"}], "user": null}}"#
        try await Self.withPolicy(patch) { gateway, _ async throws in
            let body = chatBody("my card is 4111", [("user", "u-1")])
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: body, headers: Self.auth).status == .ok)
            let sent = try #require(gateway.calls.last).request.body.json
            #expect(sent["messages"]?[0]?["content"]?.string == "[redacted]")
            #expect(sent["temperature"]?.double == 0.1)
            #expect(sent["user"] == nil)
            #expect(sent["model"]?.string == "m")
        }
    }

    @Test func theResponseStageSeesAndPatchesWholeAnswers() async throws {
        let patch = #"{"action": "allow", "patch": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "filtered"}, "finish_reason": "stop"}]}}"#
        try await Self.withPolicy(patch, config: #", "stages": ["response"]"#) { gateway, service async throws in
            let whole = try await gateway.chat(model: "m", "hi", headers: Self.auth)
            #expect(whole.status == .ok)
            #expect(whole.text == "filtered")
            #expect(whole.body?["id"]?.string == "chatcmpl-scripted")
            let question = try JSON.parse(try #require(service.requests.last).body)
            #expect(question["stage"]?.string == "response")
            #expect(question["response"]?["choices"]?[0]?["message"]?["content"]?.string == "hello from the script")

            // Streams are not held back: the service is not asked about them.
            let streamed = try await gateway.chat(model: "m", "hi", stream: true, headers: Self.auth)
            #expect(streamed.text == "hello from the script")
            #expect(service.requests.count == 1)
        }
    }

    @Test func aFailingServiceDeniesOrAllowsAsConfigured() async throws {
        for (verdict, status) in [(#"{"action": "allow"}"#, HTTPResponseStatus.internalServerError), (#"{"action": "maybe"}"#, .ok), ("not json", .ok)] {
            try await Self.withPolicy(verdict, status: status) { gateway, _ async throws in
                let refused = try await gateway.chat(model: "m", "hi", headers: Self.auth)
                #expect(refused.status == .serviceUnavailable, "\(verdict) \(status)")
                #expect(refused.error?["code"]?.string == "policy_unavailable")
                #expect(gateway.calls.isEmpty)
            }
            try await Self.withPolicy(verdict, status: status, config: #", "on_error": "allow""#) { gateway, _ async throws in
                #expect(try await gateway.chat(model: "m", "hi", headers: Self.auth).status == .ok)
            }
        }
    }

    @Test func aSlowServiceTimesOut() async throws {
        // The service would allow, after 10 s: a refusal can only come from the 0.2 s timeout.
        // No wall-clock bound: the parallel suite can stall this task for seconds, and the
        // upstream deadline fires on its own regardless.
        try await Self.withPolicy(#"{"action": "allow"}"#, delay: .seconds(10), config: #", "timeout_s": 0.2"#) { gateway, _ async throws in
            let refused = try await gateway.chat(model: "m", "hi", headers: Self.auth)
            #expect(refused.status == .serviceUnavailable)
        }
    }

    @Test func anUnreachableServiceFollowsOnError() async throws {
        // Port 9 (discard) on 127.0.0.1: nothing listens there in a test environment.
        try await withGateway(Self.manifest(#"{"url": "http://127.0.0.1:9/check", "timeout_s": 1}"#)) { gateway async throws in
            #expect(try await gateway.chat(model: "m", "hi", headers: Self.auth).status == .serviceUnavailable)
        }
        try await withGateway(Self.manifest(#"{"url": "http://127.0.0.1:9/check", "timeout_s": 1, "on_error": "allow"}"#)) { gateway async throws in
            #expect(try await gateway.chat(model: "m", "hi", headers: Self.auth).status == .ok)
        }
    }

    @Test func theURLMustBeHTTP() async {
        let errors = await manifestErrors(Self.manifest(#"{"url": "ftp://127.0.0.1/check"}"#))
        #expect(errors.map(\.path) == ["pipeline[1].config.url"])
        #expect(await manifestErrors(Self.manifest(#"{"stages": ["request"]}"#)).map(\.path) == ["pipeline[1].config.url"])
    }
}
