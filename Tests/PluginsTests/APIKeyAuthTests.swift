import Crypto
import Kernel
import KernelTesting
import Logging
import NIOCore
import NIOHTTP1
import Testing
@testable import Plugins

@Suite struct APIKeyAuthTests {
    let auth: APIKeyAuth

    init() throws {
        let config = PluginConfig(json: try JSON.parse("""
            {"keys": [{"name": "all", "key": "key-all", "models": ["*"]},
                      {"name": "hashed", "key_sha256": "\(Hex.encode(SHA256.hash(data: Array("key-hashed".utf8))))", "models": ["small"]}]}
            """), path: "pipeline[0].config")
        auth = try APIKeyAuth.build(config: config, context: testContext())
    }

    func run(headers: HTTPHeaders, model: String = "small") async throws -> (GatewayRequest, HTTPHeaders?) {
        let request = testRequest(model: model, headers: headers)
        let seen = HeaderBox()
        _ = try await auth.handle(request) { forwarded in
            seen.headers = forwarded.headers
            return .json([:])
        }
        return (request, seen.headers)
    }

    @Test func acceptsEachHeaderStyleAndStripsTheKey() async throws {
        for headers: HTTPHeaders in [["authorization": "Bearer key-all"], ["x-api-key": "key-all"], ["api-key": "key-all"]] {
            let (request, forwarded) = try await run(headers: headers.with("x-other", "kept"))
            #expect(request.context.identity?.name == "all")
            #expect(forwarded?.first(name: "x-other") == "kept")
            for name in ["authorization", "x-api-key", "api-key"] { #expect(forwarded?.contains(name: name) == false) }
        }
    }

    @Test func refusesMissingAndWrongKeys() async {
        for headers: HTTPHeaders in [[:], ["authorization": "Bearer nope"], ["authorization": "Basic key-all"], ["x-api-key": "key-al"]] {
            await #expect(throws: GatewayError.self) { try await run(headers: headers) }
            do { _ = try await run(headers: headers) } catch let error as GatewayError {
                #expect(error.status == .unauthorized)
                #expect(error.type == "authentication_error")
            } catch { Issue.record("unexpected \(error)") }
        }
    }

    @Test func enforcesTheModelAllowlist() async throws {
        let (request, _) = try await run(headers: ["authorization": "Bearer key-hashed"], model: "small")
        #expect(request.context.identity?.name == "hashed")
        do {
            _ = try await run(headers: ["authorization": "Bearer key-hashed"], model: "large")
            Issue.record("expected 403")
        } catch let error as GatewayError {
            #expect(error.status == .forbidden)
            #expect(!error.message.contains("key-hashed"))
        }
    }

    @Test func configErrorsNameThePath() {
        for (config, expected) in [
            (#"{"keys": [{"name": "a"}]}"#, "pipeline[0].config.keys[0]: needs either \"key\" or \"key_sha256\""),
            (#"{"keys": [{"name": "a", "key_sha256": "xyz"}]}"#, "pipeline[0].config.keys[0].key_sha256: expected 64 hexadecimal characters"),
            (#"{"keys": [{"name": "a", "key": "k"}, {"name": "a", "key": "j"}]}"#, "pipeline[0].config.keys[1].name: another key is already named"),
        ] {
            do {
                _ = try APIKeyAuth.build(config: PluginConfig(json: try JSON.parse(config), path: "pipeline[0].config"), context: testContext())
                Issue.record("expected an error for \(config)")
            } catch let error as ManifestError {
                #expect(error.description.hasPrefix(expected), "\(error)")
            } catch { Issue.record("unexpected \(error)") }
        }
    }
}

final class HeaderBox: @unchecked Sendable {
    var headers: HTTPHeaders?
}

extension HTTPHeaders {
    func with(_ name: String, _ value: String) -> HTTPHeaders {
        var copy = self
        copy.add(name: name, value: value)
        return copy
    }
}

/// `api-key-auth` (Sources/Plugins/Auth) configured by manifest in an in-process gateway: keys
/// by secret reference or digest, each header style, the refusals in each front door's shape,
/// model allowlists, optional keys whose secret is missing.
@Suite struct APIKeyAuthGatewayTests {
    static let digest = Hex.encode(SHA256.hash(data: Array("key-hashed-0".utf8)))
    static let manifest = scriptedManifest(pipeline: #"""
        [{"plugin": "api-key-auth", "config": {"keys": [
            {"name": "env", "key": {"env": "CLIENT_KEY"}},
            {"name": "hashed", "key_sha256": "\#(digest)", "models": ["m"]},
            {"name": "later", "key": {"env": "NOT_SET"}, "optional": true}]}},
         {"plugin": "router", "config": {"retries": 0}}]
        """#, models: #""m": {"targets": [{"provider": "p", "model": "up-m"}]}, "n": {"targets": [{"provider": "p", "model": "up-n"}]}"#)
    static let environment = ["CLIENT_KEY": "key-from-env-0"]

    @Test func eachHeaderStyleAndTheKeyNeverGoesUpstream() async throws {
        try await withGateway(Self.manifest, environment: Self.environment) { gateway async throws in
            for headers: HTTPHeaders in [["authorization": "Bearer key-from-env-0"], ["x-api-key": "key-from-env-0"], ["api-key": "key-from-env-0"]] {
                #expect(try await gateway.chat(model: "n", "hi", headers: headers.with("x-other", "kept")).status == .ok, "\(headers)")
                let call = try #require(gateway.calls.last)
                #expect(call.request.context.identity?.name == "env")
                #expect(call.request.headers.first(name: "x-other") == "kept")
                for name in ["authorization", "x-api-key", "api-key"] { #expect(!call.request.headers.contains(name: name)) }
            }
            #expect(try await gateway.chat(model: "m", "hi", headers: ["authorization": "Bearer key-hashed-0"]).status == .ok)
            #expect(gateway.calls.last?.request.context.identity?.name == "hashed")
        }
    }

    @Test func refusals() async throws {
        try await withGateway(Self.manifest, environment: Self.environment) { gateway async throws in
            let missing = try await gateway.chat(model: "m", "hi")
            #expect(missing.status == .unauthorized)
            #expect(missing.error?["code"]?.string == "missing_api_key")
            let wrong = try await gateway.chat(model: "m", "hi", headers: ["authorization": "Bearer key-from-env-1"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.error?["type"]?.string == "authentication_error")
            #expect(wrong.bodyText?.contains("key-from-env") == false)
            let forbidden = try await gateway.chat(model: "n", "hi", headers: ["authorization": "Bearer key-hashed-0"])
            #expect(forbidden.status == .forbidden)
            #expect(forbidden.error?["message"]?.string == "The key `hashed` may not use the model `n`.")
            let body: JSON = ["model": "m", "max_tokens": 5, "messages": [["role": "user", "content": "hi"]]]
            let anthropic = try await gateway.send(.POST, "/v1/messages", body: body, headers: ["x-api-key": "nope"])
            #expect(anthropic.status == .unauthorized)
            #expect(anthropic.body?["error"]?["type"]?.string == "authentication_error")
            #expect(gateway.calls.isEmpty)

            // The model list shows a key its own models.
            let list = try await gateway.send(.GET, "/v1/models", headers: ["authorization": "Bearer key-hashed-0"])
            #expect(list.body?["data"]?.elements.compactMap { $0["id"]?.string } == ["m"])
        }
    }

    @Test func aMissingSecretRefusesTheManifestUnlessTheKeyIsOptional() async {
        let errors = await manifestErrors(Self.manifest)
        #expect(errors.count == 1)
        #expect(errors.first?.path == "pipeline[0].config.keys[0].key")
    }
}
