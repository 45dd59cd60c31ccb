import _CryptoExtras
import Foundation
import Kernel
import KernelTesting
import NIOConcurrencyHelpers
import NIOHTTP1
import Testing

@testable import Plugins

/// The `vertex-ai` provider on the wire, against an upstream on 127.0.0.1 that is also the
/// service account's token endpoint: the signed assertion, the token's reuse, Gemini and Claude
/// models, embeddings, and the configs it refuses.
@Suite struct VertexAITests {
    /// A service account whose key is made for the test, and the upstream that knows its public key.
    final class Google: Sendable {
        let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
        let exchanges = NIOLockedValueBox<[JSON]>([])
        let failTokens: Bool
        let server: NIOLockedValueBox<LocalHTTPServer?> = .init(nil)

        init(failTokens: Bool = false) { self.failTokens = failTokens }

        var url: String { server.withLockedValue { $0!.url } }
        var requests: [LocalHTTPServer.Request] { server.withLockedValue { $0!.requests } }

        func keyFile(tokenURI: String) -> String {
            JSON(object: [("type", "service_account"), ("client_email", "sa@p.iam.gserviceaccount.com"), ("private_key_id", "kid-1"),
                          ("private_key", JSON(key.pemRepresentation)), ("token_uri", JSON(tokenURI))]).description
        }

        /// Checks an assertion as Google's token endpoint would; the claims, or nil.
        func verify(_ form: String) -> JSON? {
            guard form.hasPrefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=") else { return nil }
            let jwt = form.split(separator: "=").last.map(String.init) ?? ""
            let parts = jwt.split(separator: ".").map(String.init)
            guard parts.count == 3, let header = Self.decode(parts[0]), let claims = Self.decode(parts[1]),
                  let signature = Self.base64URL(parts[2]) else { return nil }
            guard header["alg"]?.string == "RS256", header["kid"]?.string == "kid-1",
                  key.publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature),
                                                 for: Data((parts[0] + "." + parts[1]).utf8), padding: .insecurePKCS1v1_5) else { return nil }
            return claims
        }

        static func base64URL(_ text: String) -> Data? {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            return Data(base64Encoded: base64)
        }

        static func decode(_ part: String) -> JSON? { base64URL(part).flatMap { try? JSON.parse($0) } }

        func start() async throws {
            let server = try await LocalHTTPServer.start { [self] request in
                if request.uri == "/token" {
                    if failTokens { return .json(#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#, status: .badRequest) }
                    guard let claims = verify(request.text) else { return .json(#"{"error": "invalid_grant"}"#, status: .badRequest) }
                    let count = exchanges.withLockedValue { $0.append(claims); return $0.count }
                    return .init(body: #"{"access_token": "tok-\#(count)", "expires_in": 3599, "token_type": "Bearer"}"#, delay: .milliseconds(100))
                }
                guard request.headers.first(name: "authorization")?.hasPrefix("Bearer tok-") == true
                        || request.headers.first(name: "authorization") == "Bearer file-token-2" else {
                    return .json(#"{"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}"#,
                                 status: .unauthorized)
                }
                if request.uri.hasSuffix(":rawPredict") {
                    return .json(#"{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [{"type": "text", "text": "hi from claude"}], "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 7, "output_tokens": 3}}"#)
                }
                if request.uri.hasSuffix(":streamRawPredict") {
                    let events = [
                        ("message_start", #"{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 7, "output_tokens": 1}}}"#),
                        ("content_block_start", #"{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}"#),
                        ("content_block_delta", #"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "streamed claude"}}"#),
                        ("content_block_stop", #"{"type": "content_block_stop", "index": 0}"#),
                        ("message_delta", #"{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 2}}"#),
                        ("message_stop", #"{"type": "message_stop"}"#),
                    ]
                    return .init(headers: ["content-type": "text/event-stream"], body: events.map { "event: \($0.0)\ndata: \($0.1)\n\n" }.joined())
                }
                if request.uri.hasSuffix(":streamGenerateContent?alt=sse") {
                    let event = #"{"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1}}"#
                    return .init(headers: ["content-type": "text/event-stream"], body: "data: \(event)\r\n\r\n")
                }
                if request.uri.hasSuffix(":predict") {
                    return .json(#"{"predictions": [{"embeddings": {"values": [0.5], "statistics": {"token_count": 4}}}]}"#)
                }
                return .json(#"{"candidates": [{"content": {"role": "model", "parts": [{"text": "hi from vertex"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3}}"#)
            }
            self.server.withLockedValue { $0 = server }
        }

        func shutdown() async { await server.withLockedValue { $0 }?.shutdown() }
    }

    static let models = #""g": {"targets": [{"provider": "v", "model": "gemini-2.5-pro"}]}, "c": {"targets": [{"provider": "v", "model": "claude-sonnet-4@20250514"}]}, "e": {"targets": [{"provider": "v", "model": "text-embedding-005"}]}"#

    static func withVertex(_ google: Google, config: (String) -> String,
                           _ body: (TestGateway) async throws -> Void) async throws {
        try await google.start()
        let manifest = """
            {"providers": {"v": {"plugin": "vertex-ai", "config": \(config(google.url))}},
             "models": {\(models)},
             "pipeline": [{"plugin": "router", "config": {"retries": 0}}]}
            """
        do { try await withGateway(manifest) { try await body($0) } } catch {
            await google.shutdown()
            throw error
        }
        await google.shutdown()
    }

    static func serviceAccountConfig(_ google: Google) -> (String) -> String {
        { url in
            JSON(object: [("project", "proj-1"), ("location", "europe-west4"), ("base_url", JSON(url)),
                          ("credentials", JSON(google.keyFile(tokenURI: url + "/token")))]).description
        }
    }

    @Test func aServiceAccountsTokenIsFetchedOnceAndSent() async throws {
        let google = Google()
        try await Self.withVertex(google, config: Self.serviceAccountConfig(google)) { gateway in
            // Requests at once share one exchange.
            let answers = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<5 { group.addTask { try await gateway.chat(model: "g", "hello") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0.status == .ok && $0.text == "hi from vertex" })
            #expect(try await gateway.chat(model: "g", "again").status == .ok)
            let exchanges = google.exchanges.withLockedValue { $0 }
            #expect(exchanges.count == 1)
            let claims = try #require(exchanges.first)
            #expect(claims["iss"]?.string == "sa@p.iam.gserviceaccount.com")
            #expect(claims["scope"]?.string == "https://www.googleapis.com/auth/cloud-platform")
            #expect(claims["aud"]?.string == google.url + "/token")
            #expect((claims["exp"]?.int ?? 0) - (claims["iat"]?.int ?? 0) == 3600)

            let sent = try #require(google.requests.last { $0.uri != "/token" })
            #expect(sent.uri == "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent")
            #expect(sent.headers.first(name: "authorization") == "Bearer tok-1")

            let streamed = try await gateway.chat(model: "g", "hello", stream: true)
            #expect(streamed.events?.last?.isDone == true)
            #expect(google.requests.last?.uri.hasSuffix(":streamGenerateContent?alt=sse") == true)

            let embedded = try await gateway.send(.POST, "/v1/embeddings", body: ["model": "e", "input": "hi"])
            #expect(embedded.body?["data"]?[0]?["embedding"] == JSON(array: [0.5]))
            #expect(embedded.body?["usage"]?["prompt_tokens"]?.int == 4)
            #expect(google.requests.last?.uri.hasSuffix("/publishers/google/models/text-embedding-005:predict") == true)
            #expect(try JSON.parse(try #require(google.requests.last).body)["instances"]?[0]?["content"]?.string == "hi")
        }
    }

    @Test func claudeModelsSpeakMessagesThroughRawPredict() async throws {
        let google = Google()
        try await Self.withVertex(google, config: Self.serviceAccountConfig(google)) { gateway in
            let messages: JSON = ["model": "c", "max_tokens": 10, "messages": [["role": "user", "content": "hi"]]]
            let direct = try await gateway.send(.POST, "/v1/messages", body: messages)
            #expect(direct.status == .ok)
            #expect(direct.body?["content"]?[0]?["text"]?.string == "hi from claude")
            let sent = try #require(google.requests.last)
            #expect(sent.uri == "/v1/projects/proj-1/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict")
            let body = try JSON.parse(sent.body)
            #expect(body["model"] == nil)
            #expect(body["anthropic_version"]?.string == "vertex-2023-10-16")
            #expect(body["max_tokens"]?.int == 10)

            // An OpenAI client reaches Claude too: the Kernel translates to Messages.
            let chat = try await gateway.chat(model: "c", "hello")
            #expect(chat.text == "hi from claude")
            #expect(chat.body?["usage"]?["prompt_tokens"]?.int == 7)
            #expect(try JSON.parse(try #require(google.requests.last).body)["max_tokens"]?.int == 4096)

            let streamed = try await gateway.chat(model: "c", "hello", stream: true)
            #expect(streamed.text == "streamed claude")
            #expect(google.requests.last?.uri.hasSuffix(":streamRawPredict") == true)
            #expect(try JSON.parse(try #require(google.requests.last).body)["stream"]?.bool == true)

            let embeddings = try await gateway.send(.POST, "/v1/embeddings", body: ["model": "c", "input": "hi"])
            #expect(embeddings.status == .badRequest)
        }
    }

    @Test func aFailedExchangeIsA502ThatNamesIt() async throws {
        let google = Google(failTokens: true)
        try await Self.withVertex(google, config: Self.serviceAccountConfig(google)) { gateway in
            let answer = try await gateway.chat(model: "g", "hello")
            #expect(answer.status == .badGateway)
            #expect(answer.error?["code"]?.string == "provider_credentials")
            #expect(answer.error?["message"]?.string?
                .hasSuffix("could not obtain a Vertex AI access token: the token endpoint answered HTTP 400 (invalid_grant: Invalid JWT Signature.)") == true)
            #expect(answer.bodyText?.contains("PRIVATE KEY") == false)
        }
    }

    @Test func anAccessTokenFileIsReadAndReread() async throws {
        let google = Google()
        let file = TestFolder.make("vertex") + "/token"
        try "file-token-1\n".write(toFile: file, atomically: true, encoding: .utf8)
        try await Self.withVertex(google, config: { url in
            #"{"project": "p", "location": "global", "base_url": "\#(url)", "access_token": {"file": "\#(file)"}}"#
        }) { gateway in
            let refused = try await gateway.chat(model: "g", "hello")
            #expect(refused.status == .badGateway)  // file-token-1 is not one the upstream takes
            #expect(google.requests.last?.headers.first(name: "authorization") == "Bearer file-token-1")
            #expect(google.requests.last?.uri.hasPrefix("/v1/projects/p/locations/global/") == true)
        }
        // What the provider re-reads: a rewritten file is seen once the interval has passed.
        let tokens = TokenFile(file, rereadAfter: .zero)
        #expect(try tokens.token() == "file-token-1")
        try "file-token-2".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try tokens.token() == "file-token-2")
    }

    @Test func badConfigsAreRefused() async throws {
        func errors(_ config: String) async -> [String] {
            await manifestErrors("""
                {"providers": {"v": {"plugin": "vertex-ai", "config": \(config)}},
                 "models": {"m": {"targets": [{"provider": "v", "model": "x"}]}}, "pipeline": [{"plugin": "router"}]}
                """).map { "\($0.path): \($0.message)" }
        }
        let both = #"give either "credentials" (a service account key) or "access_token""#
        #expect(await errors(#"{"project": "p", "access_token": "t", "credentials": "{}"}"#) == ["providers.v.config: \(both)"])
        #expect(await errors(#"{"project": "p"}"#) == ["providers.v.config: \(both)"])
        #expect(await errors(#"{"project": "p", "access_token": "t", "base_url": "gopher://x"}"#)
                == [#"providers.v.config.base_url: expected an http:// or https:// URL, got "gopher://x""#])
        #expect(await errors(#"{"project": "p/../q", "access_token": "t"}"#).first?.hasPrefix("providers.v.config.project:") == true)
        #expect(await errors(#"{"project": "p", "credentials": "not json"}"#)
                == ["providers.v.config.credentials: expected a service account key file (JSON)"])
        let badKey = JSON(object: [("client_email", "a@b"), ("private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")]).description
        let badKeyConfig = JSON(object: [("project", "p"), ("credentials", JSON(badKey))]).description
        let refused = await errors(badKeyConfig)
        #expect(refused == ["providers.v.config.credentials: the key file's private_key is not an RSA private key in PEM form"])
    }

    @Test func whatItSpeaksFollowsTheModel() async throws {
        let config = JSON(object: [("project", "p"), ("location", "us-east5"), ("access_token", "t")])
        let provider = try VertexAIProvider.build(config: PluginConfig(json: config, path: "providers.v.config"), context: try testContext())
        #expect(provider.nativeOperations(for: "claude-opus-4") == [.messages])
        #expect(provider.nativeOperations(for: "gemini-2.5-flash") == [.chatCompletions, .embeddings])
        let probe = await provider.probe()
        #expect(probe?.isUp == true)
    }
}
