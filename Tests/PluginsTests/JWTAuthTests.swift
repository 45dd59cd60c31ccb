import Crypto
import Foundation
import Kernel
import NIOHTTP1
import Testing
@testable import Plugins

@Suite struct JWTAuthTests {
    static let secret = "jwt-test-secret-0123456789-abcdefghijkl"

    func auth(_ extra: String = "") async throws -> JWTAuth {
        let config = PluginConfig(json: try JSON.parse(#"{"hmac_secrets": [{"secret": "\#(Self.secret)"}], "models_claim": "models", "algorithms": ["HS256", "RS256", "ES256"]\#(extra)}"#),
                                  path: "pipeline[0].config")
        let auth = try JWTAuth.build(config: config, context: testContext())
        try await auth.start()
        return auth
    }

    /// An HS256-signed token whose header says `alg`.
    func token(_ claims: [String: Any], alg: String = "HS256") throws -> HTTPHeaders {
        func part(_ object: Any) throws -> String {
            try JSONSerialization.data(withJSONObject: object).base64URL
        }
        var claims = claims
        claims["exp"] = claims["exp"] ?? Date().timeIntervalSince1970 + 600
        let signed = try part(["alg": alg, "typ": "JWT"]) + "." + part(claims)
        let signature = Data(HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: SymmetricKey(data: Data(Self.secret.utf8))))
        return ["authorization": "Bearer \(signed).\(signature.base64URL)"]
    }

    @Test func aKeysTypeFixesItsAlgorithm() async throws {
        let auth = try await auth()
        guard case .undecided = auth.screen(try token(["sub": "a"])) else { Issue.record("an HS256 token was not passed on"); return }
        guard case .refused(let error) = auth.screen(try token(["sub": "a"], alg: "RS256")) else {
            Issue.record("an HMAC-signed token labelled RS256 was not refused on its head"); return
        }
        #expect(error.status == .unauthorized)
        guard case .refused = auth.screen([:]) else { Issue.record("no token was not refused"); return }
    }

    @Test func theCallerIsAStringOrAnIntegerSub() async throws {
        let auth = try await auth(#", "models_claim_absent": "all""#)
        #expect(try await auth.verify(try token(["sub": 42])).name == "42")
        #expect(try await auth.verify(try token(["sub": "alice"])).name == "alice")
        for sub: Any in [NSNull(), 4.5, ["x"]] {
            await #expect(throws: GatewayError.self) { try await auth.verify(try token(["sub": sub])) }
        }
        await #expect(throws: GatewayError.self) { try await auth.verify(try token(["name": "no sub"])) }
    }

    @Test func theModelsClaimFailsClosed() async throws {
        let strict = try await auth()
        #expect(try await strict.verify(try token(["sub": "a", "models": ["m1"]])).allowedModels == ["m1"])
        #expect(try await strict.verify(try token(["sub": "a", "models": "m1 m2"])).allowedModels == ["m1", "m2"])
        for models: Any? in [nil, 3, ["k": "v"], ["m1", 3]] {
            var claims: [String: Any] = ["sub": "a"]
            claims["models"] = models
            #expect(try await strict.verify(try token(claims)).allowedModels == [], "models: \(String(describing: models))")
        }
        let lenient = try await auth(#", "models_claim_absent": "all""#)
        #expect(try await lenient.verify(try token(["sub": "a"])).allowedModels == nil)
        #expect(try await lenient.verify(try token(["sub": "a", "models": 3])).allowedModels == [])
    }
}

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
