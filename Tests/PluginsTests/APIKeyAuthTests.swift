import Crypto
import Kernel
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
