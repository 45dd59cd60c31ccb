import Kernel
import KernelTesting
import NIOHTTP1
import Testing
@testable import Plugins

/// The providers of Sources/Plugins/Providers on the wire, against an upstream on 127.0.0.1
/// (`LocalHTTPServer`): what each sends (URL, credentials, headers, body) and how its answers and
/// failures reach the client. The translations themselves are GoldenTranslationTests'.
@Suite struct ProvidersTests {
    /// An upstream answering by the model each request names: `status-NNN` fails with NNN, the
    /// rest answer as OpenAI (or, on /v1/messages, Anthropic) would.
    static func upstream() async throws -> LocalHTTPServer {
        try await LocalHTTPServer.start { request in
            let body = (try? JSON.parse(request.body)) ?? .null
            let model = body["model"]?.string ?? ""
            switch model {
            case "status-429":
                return .init(status: .tooManyRequests, headers: ["content-type": "application/json", "retry-after": "7"],
                             body: #"{"error": {"message": "slow down", "type": "rate_limit_error"}}"#)
            case "status-400":
                return .json(#"{"error": {"message": "max_tokens is too large", "type": "invalid_request_error", "param": "max_tokens", "code": "too_big"}}"#,
                             status: .badRequest)
            case "status-401":
                return .json(#"{"error": {"message": "bad key up-key"}}"#, status: .unauthorized)
            case "status-500":
                return .json(#"{"error": {"message": "boom"}}"#, status: .internalServerError)
            case "html":
                return .init(headers: ["content-type": "text/html"], body: "<html>proxy error</html>")
            case "large":
                return .json(#"{"id": "x", "padding": "\#(String(repeating: "x", count: 500))"}"#)
            default:
                break
            }
            if request.uri == "/v1/messages" {
                return .json(#"{"id": "msg_1", "type": "message", "role": "assistant", "model": "\#(model)", "content": [{"type": "text", "text": "hi from anthropic"}], "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 7, "output_tokens": 3}}"#)
            }
            guard body["stream"]?.bool == true else {
                return .json(#"{"id": "c1", "object": "chat.completion", "created": 1, "model": "\#(model)", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi from upstream"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}}"#)
            }
            let chunks = [
                #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"\#(model)","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#,
                #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"\#(model)","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
                #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"\#(model)","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}"#,
                "[DONE]",
            ]
            return .init(headers: ["content-type": "text/event-stream"], body: chunks.map { "data: \($0)\n\n" }.joined())
        }
    }

    static func withUpstream(_ providers: (String) -> String, models: String,
                             _ body: (TestGateway, LocalHTTPServer) async throws -> Void) async throws {
        let upstream = try await Self.upstream()
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

    static let client: HTTPHeaders = ["authorization": "Bearer client-key", "x-request-id": "provider-test"]

    static func openAI(_ url: String) -> String {
        #"{"up": {"plugin": "openai-compatible", "config": {"base_url": "\#(url)/v1/", "api_key": "up-key", "headers": {"x-org": "acme"}, "max_response_bytes": 400}}}"#
    }

    static let openAIModels = ["m", "status-429", "status-400", "status-401", "status-500", "html", "large"]
        .map { #""\#($0)": {"targets": [{"provider": "up", "model": "\#($0 == "m" ? "up-m" : $0)"}]}"# }.joined(separator: ", ")

    @Test(arguments: [("application/json", true), ("application/json; charset=utf-8", true), ("Application/JSON", true),
                      ("application/problem+json", true), ("text/json", true), ("jso", false), ("text/plain", false),
                      ("text/html", false), ("", false), ("application/jsonx", true)])
    func aContentTypeNamesJSONInAnyCase(type: String, isJSON: Bool) {
        #expect(OpenAIWire.namesJSON(type) == isJSON)
    }

    @Test func openAICompatibleSendsTheRequestWithItsOwnKey() async throws {
        try await Self.withUpstream(Self.openAI, models: Self.openAIModels) { gateway, upstream async throws in
            let body = chatBody("hello", [("temperature", 0.5), ("user", "u-1")])
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body, headers: Self.client)
            #expect(answer.status == .ok)
            #expect(answer.text == "hi from upstream")
            #expect(answer.body?["usage"]?["total_tokens"]?.int == 7)
            #expect(answer.headers.first(name: "x-sluice-provider") == "up")

            let sent = try #require(upstream.requests.last { $0.method == .POST })
            #expect(sent.method == .POST)
            #expect(sent.uri == "/v1/chat/completions")
            #expect(sent.headers.first(name: "authorization") == "Bearer up-key")
            #expect(sent.headers.first(name: "x-org") == "acme")
            #expect(sent.headers.first(name: "x-request-id") == "provider-test")
            #expect(sent.headers.first(name: "content-type") == "application/json")
            #expect(!sent.headers.description.contains("client-key"))
            let json = try JSON.parse(sent.body)
            #expect(json["model"]?.string == "up-m")
            #expect(json["temperature"]?.double == 0.5)
            #expect(json["user"]?.string == "u-1")
            #expect(json["messages"]?[0]?["content"]?.string == "hello")
        }
    }

    @Test func openAIStreamsAskForUsageAndHideIt() async throws {
        try await Self.withUpstream(Self.openAI, models: Self.openAIModels) { gateway, upstream async throws in
            let streamed = try await gateway.chat(model: "m", "hello", stream: true, headers: Self.client)
            #expect(streamed.status == .ok)
            #expect(streamed.text == "Hello")
            #expect(streamed.events?.last?.isDone == true)
            #expect(streamed.events?.contains { $0.json?["usage"]?.isObject == true } == false)
            let sent = try JSON.parse(try #require(upstream.requests.last { $0.method == .POST }).body)
            #expect(sent["stream_options"]?["include_usage"]?.bool == true)
            #expect(try #require(upstream.requests.last { $0.method == .POST }).headers.first(name: "accept") == "text/event-stream")

            // A client that asks for usage gets the chunk.
            let asked = chatBody("hello", [("stream", true), ("stream_options", ["include_usage": true])])
            let withUsage = try await gateway.send(.POST, "/v1/chat/completions", body: asked, headers: Self.client)
            #expect(withUsage.events?.compactMap { $0.json?["usage"]?["completion_tokens"]?.int } == [2])
        }
    }

    @Test func upstreamFailuresAsTheClientSeesThem() async throws {
        try await Self.withUpstream(Self.openAI, models: Self.openAIModels) { gateway, _ async throws in
            let limited = try await gateway.chat(model: "status-429", "hi", headers: Self.client)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers.first(name: "retry-after") == "7")
            #expect(limited.error?["code"]?.string == "upstream_rate_limited")

            let refused = try await gateway.chat(model: "status-400", "hi", headers: Self.client)
            #expect(refused.status == .badRequest)
            #expect(refused.error?["message"]?.string == "max_tokens is too large")
            #expect(refused.error?["param"]?.string == "max_tokens")

            let credentials = try await gateway.chat(model: "status-401", "hi", headers: Self.client)
            #expect(credentials.status == .badGateway)
            #expect(credentials.error?["code"]?.string == "upstream_auth_failed")
            #expect(credentials.bodyText?.contains("up-key") == false)

            let failed = try await gateway.chat(model: "status-500", "hi", headers: Self.client)
            #expect(failed.status == .badGateway)
            #expect(failed.error?["message"]?.string?.contains("boom") == true)

            let html = try await gateway.chat(model: "html", "hi", headers: Self.client)
            #expect(html.status == .badGateway)
            #expect(html.error?["code"]?.string == "upstream_invalid")

            let large = try await gateway.chat(model: "large", "hi", headers: Self.client)
            #expect(large.status == .badGateway)
            #expect(large.error?["code"]?.string == "upstream_response_too_large")
        }
    }

    @Test func anUnreachableProviderIsUnavailable() async throws {
        try await Self.withUpstream({ _ in #"{"up": {"plugin": "openai-compatible", "config": {"base_url": "http://127.0.0.1:9/v1"}}}"# },
                                    models: #""m": {"targets": [{"provider": "up", "model": "up-m"}]}"#) { gateway, _ async throws in
            let answer = try await gateway.chat(model: "m", "hi", headers: Self.client)
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.error?["code"]?.string == "provider_unavailable")
            #expect(answer.headers.first(name: "x-sluice-provider") == "up")  // the provider that failed
        }
    }

    @Test func anthropicTranslatesAnOpenAIRequest() async throws {
        let providers = { (url: String) in
            #"{"claude": {"plugin": "anthropic", "config": {"base_url": "\#(url)", "api_key": "ant-key", "default_max_tokens": 321}}}"#
        }
        try await Self.withUpstream(providers, models: #""m": {"targets": [{"provider": "claude", "model": "claude-up"}]}"#) { gateway, upstream async throws in
            let body = try JSON.parse(#"{"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]}"#)
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body, headers: Self.client)
            #expect(answer.status == .ok)
            #expect(answer.text == "hi from anthropic")
            #expect(answer.body?["object"]?.string == "chat.completion")
            #expect(answer.body?["usage"]?["prompt_tokens"]?.int == 7)

            let sent = try #require(upstream.requests.last { $0.method == .POST })
            #expect(sent.uri == "/v1/messages")
            #expect(sent.headers.first(name: "x-api-key") == "ant-key")
            #expect(sent.headers.first(name: "anthropic-version") == "2023-06-01")
            #expect(sent.headers.first(name: "authorization") == nil)
            let json = try JSON.parse(sent.body)
            #expect(json["model"]?.string == "claude-up")
            #expect(json["max_tokens"]?.int == 321)
            #expect(json["system"]?.string == "be brief")
            #expect(json["messages"]?[0]?["role"]?.string == "user")

            // Anthropic's own front door passes through but for the model.
            let messages: JSON = ["model": "m", "max_tokens": 10, "messages": [["role": "user", "content": "hi"]]]
            let direct = try await gateway.send(.POST, "/v1/messages", body: messages, headers: Self.client)
            #expect(direct.body?["content"]?[0]?["text"]?.string == "hi from anthropic")
            #expect(try JSON.parse(try #require(upstream.requests.last { $0.method == .POST }).body)["max_tokens"]?.int == 10)
        }
    }

    @Test func azureAddressesTheDeployment() async throws {
        let providers = { (url: String) in
            #"{"az": {"plugin": "azure-openai", "config": {"base_url": "\#(url)", "api_key": "az-key", "api_version": "2024-10-21"}}}"#
        }
        try await Self.withUpstream(providers, models: #""m": {"targets": [{"provider": "az", "model": "gpt dep"}]}"#) { gateway, upstream async throws in
            let answer = try await gateway.chat(model: "m", "hi", headers: Self.client)
            #expect(answer.text == "hi from upstream")
            let sent = try #require(upstream.requests.last { $0.method == .POST })
            #expect(sent.uri == "/openai/deployments/gpt%20dep/chat/completions?api-version=2024-10-21")
            #expect(sent.headers.first(name: "api-key") == "az-key")
            #expect(sent.headers.first(name: "authorization") == nil)
        }
        let errors = await manifestErrors("""
            {"providers": {"az": {"plugin": "azure-openai", "config": {"base_url": "http://127.0.0.1:9"}}},
             "models": {"m": {"targets": [{"provider": "az", "model": "d"}]}}, "pipeline": [{"plugin": "router"}]}
            """)
        #expect(errors.map(\.message) == [#"give either "api_key" or "entra_token_file""#])
    }

    /// A provider answers over either transport (`NIOTransportTests` tells them apart on the
    /// wire); `nio` cannot reach an https:// API.
    @Test func theTransportSettingChoosesHowTheProviderIsReached() async throws {
        for transport in ["nio", "curl"] {
            let config = { (url: String) in
                #"{"up": {"plugin": "openai-compatible", "config": {"base_url": "\#(url)/v1", "api_key": "up-key", "transport": "\#(transport)"}}}"#
            }
            try await Self.withUpstream(config, models: Self.openAIModels) { gateway, upstream async throws in
                let answer = try await gateway.chat(model: "m", "hi", headers: Self.client)
                #expect(answer.text == "hi from upstream", "over \(transport)")
            }
        }
        let errors = await manifestErrors("""
            {"providers": {"up": {"plugin": "openai", "config": {"api_key": "k", "transport": "nio"}}},
             "models": {"m": {"targets": [{"provider": "up", "model": "x"}]}}, "pipeline": [{"plugin": "router"}]}
            """)
        #expect(errors.map(\.path) == ["providers.up.config.transport"])
        #expect(errors.first?.message.contains(#""nio" speaks plain HTTP only"#) == true)
    }
}
