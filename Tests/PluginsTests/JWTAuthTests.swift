import Crypto
import Foundation
import Kernel
import KernelTesting
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

    /// A team claim picks the team's guardrail policy, carried on the identity for the guardrail plugins.
    @Test func aTeamsGuardrailPolicy() async throws {
        let auth = try await auth(#", "team_claim": "team", "team_guardrails": {"support": {"pii": {"email": "restore"}, "content-filter": false}}"#)
        let support = try await auth.verify(try token(["sub": "a", "models": ["m"], "team": "support"]))
        #expect(support.guardrails.isDisabled("content-filter"))
        #expect(support.guardrails["pii"]?["email"]?.string == "restore")
        let other = try await auth.verify(try token(["sub": "b", "models": ["m"], "team": "research"]))
        #expect(other.guardrails.isEmpty)
        await #expect(throws: (any Error).self) { try await self.auth(#", "team_guardrails": {"support": {"pii": "on"}}"#) }
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

/// `jwt-auth` (Sources/Plugins/Auth) in an in-process gateway, configured by manifest: refusals in the front door's
/// shape, claims (expiry, issuer, audience, models), secrets by reference, and ES256 with a JWKS file.
@Suite struct JWTAuthGatewayTests {
    static let secret = "jwt-gateway-secret-0123456789-abcdefghijkl"

    static func manifest(_ config: String) -> String {
        scriptedManifest(pipeline: #"[{"plugin": "jwt-auth", "config": \#(config)}, {"plugin": "router", "config": {"retries": 0}}]"#,
                         models: #""m": {"targets": [{"provider": "p", "model": "up-m"}]}, "n": {"targets": [{"provider": "p", "model": "up-n"}]}"#)
    }

    static let hmac = #"{"hmac_secrets": [{"secret": {"env": "JWT_SECRET"}}], "models_claim": "models", "issuer": "https://issuer.test", "audience": "sluice"}"#
    static let environment = ["JWT_SECRET": secret]

    static func part(_ object: Any) throws -> String { try JSONSerialization.data(withJSONObject: object).base64URL }

    /// An HS256 token with `claims` over valid defaults (exp in 10 minutes, the issuer and audience).
    static func hs256(_ claims: [String: Any], secret: String = secret) throws -> HTTPHeaders {
        var all: [String: Any] = ["sub": "alice", "exp": Date().timeIntervalSince1970 + 600, "iss": "https://issuer.test", "aud": "sluice",
                                  "models": ["m"]]
        for (key, value) in claims { all[key] = value }
        let signed = try part(["alg": "HS256", "typ": "JWT"]) + "." + part(all.filter { !($0.value is NSNull) })
        let signature = Data(HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: SymmetricKey(data: Data(secret.utf8))))
        return ["authorization": "Bearer \(signed).\(signature.base64URL)"]
    }

    @Test func aValidTokenIsAdmittedForItsModels() async throws {
        try await withGateway(Self.manifest(Self.hmac), environment: Self.environment) { gateway async throws in
            let answer = try await gateway.chat(model: "m", "hi", headers: try Self.hs256([:]))
            #expect(answer.status == .ok)
            #expect(gateway.calls.last?.request.context.identity?.name == "alice")
            #expect(gateway.calls.last?.request.headers.contains(name: "authorization") == false)

            let forbidden = try await gateway.chat(model: "n", "hi", headers: try Self.hs256([:]))
            #expect(forbidden.status == .forbidden)
            #expect(forbidden.error?["type"]?.string == "permission_error")
            #expect(forbidden.error?["message"]?.string == "The token of `alice` may not use the model `n`.")
            #expect(gateway.calls.count == 1)
        }
    }

    @Test func claimsAreChecked() async throws {
        let now = Date().timeIntervalSince1970
        let cases: [(claims: [String: Any], message: String)] = [
            (["exp": now - 120], "Invalid token: it has expired."),
            (["exp": NSNull()], "Invalid token: it has no exp claim."),
            (["nbf": now + 600], "Invalid token: it is not valid yet."),
            (["iss": "https://other.test"], "Invalid token: wrong issuer."),
            (["aud": ["other"]], "Invalid token: wrong audience."),
            (["sub": NSNull()], "Invalid token: its sub claim does not name the caller (a string or an integer is needed)."),
        ]
        try await withGateway(Self.manifest(Self.hmac), environment: Self.environment) { gateway async throws in
            for (claims, message) in cases {
                let refused = try await gateway.chat(model: "m", "hi", headers: try Self.hs256(claims))
                #expect(refused.status == .unauthorized, "\(claims)")
                #expect(refused.error?["code"]?.string == "invalid_token")
                #expect(refused.error?["message"]?.string == message)
            }
            // Within the leeway (30 s by default) an expired token still passes.
            #expect(try await gateway.chat(model: "m", "hi", headers: try Self.hs256(["exp": now - 5])).status == .ok)
            let forged = try await gateway.chat(model: "m", "hi", headers: try Self.hs256([:], secret: "another-secret-of-enough-length-0123456789"))
            #expect(forged.error?["message"]?.string == "Invalid token: the signature does not verify.")
            #expect(gateway.calls.count == 1)
        }
    }

    @Test func refusalsComeInTheFrontDoorsShape() async throws {
        try await withGateway(Self.manifest(Self.hmac), environment: Self.environment) { gateway async throws in
            let missing = try await gateway.chat(model: "m", "hi")
            #expect(missing.status == .unauthorized)
            #expect(missing.error?["code"]?.string == "missing_token")
            let body: JSON = ["model": "m", "max_tokens": 5, "messages": [["role": "user", "content": "hi"]]]
            let anthropic = try await gateway.send(.POST, "/v1/messages", body: body, headers: ["authorization": "Bearer not.a.token"])
            #expect(anthropic.status == .unauthorized)
            #expect(anthropic.body?["type"]?.string == "error")
            #expect(anthropic.body?["error"]?["type"]?.string == "authentication_error")
        }
    }

    @Test func es256WithAJWKSFile() async throws {
        let key = P256.Signing.PrivateKey()
        let point = key.publicKey.x963Representation  // 0x04 ‖ x ‖ y
        let jwks = try JSONSerialization.data(withJSONObject: ["keys": [[
            "kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig",
            "x": Data(point[1..<33]).base64URL, "y": Data(point[33..<65]).base64URL]]])
        let file = URL(fileURLWithPath: TestFolder.make("jwks") + "/jwks.json")
        try jwks.write(to: file)

        func token(kid: String) throws -> HTTPHeaders {
            let signed = try Self.part(["alg": "ES256", "typ": "JWT", "kid": kid])
                + "." + Self.part(["sub": 42, "exp": Date().timeIntervalSince1970 + 600])
            let signature = try key.signature(for: Data(signed.utf8)).rawRepresentation
            return ["authorization": "Bearer \(signed).\(signature.base64URL)"]
        }
        try await withGateway(Self.manifest(#"{"jwks_file": "\#(file.path)", "models_claim": "models", "models_claim_absent": "all"}"#)) { gateway async throws in
            #expect(try await gateway.chat(model: "n", "hi", headers: try token(kid: "ec-1")).status == .ok)
            #expect(gateway.calls.last?.request.context.identity?.name == "42")
            let unknown = try await gateway.chat(model: "n", "hi", headers: try token(kid: "ec-2"))
            #expect(unknown.error?["message"]?.string == "Invalid token: unknown key id.")
        }
    }

    @Test func configErrorsNameThePath() async {
        let short = await manifestErrors(Self.manifest(#"{"hmac_secrets": [{"secret": "too short"}]}"#))
        #expect(short.map(\.path) == ["pipeline[0].config.hmac_secrets[0].secret"])
        #expect(short.first?.message == "an HS256 secret needs at least 32 bytes")
        #expect(await manifestErrors(Self.manifest(#"{"issuer": "x"}"#)).map(\.message) == ["give hmac_secrets, jwks_file, or both"])
        #expect(await manifestErrors(Self.manifest(#"{"jwks_file": "/nonexistent/jwks.json"}"#)).map(\.path) == ["pipeline[0].config.jwks_file"])
    }
}
