import Foundation
import JWTKit
import Kernel
import NIOHTTP1

/// Authenticates callers by JSON Web Token (`Authorization: Bearer`): HS256 with shared
/// secrets, RS256/ES256 with public keys from a JWKS file. Signatures are checked by jwt-kit;
/// `exp`/`nbf` (with leeway), `iss` and `aud` here. One claim names the caller, another may list
/// the public models it may use. A token's header is checked on the request's head (its
/// algorithm must be one its key verifies); its signature and claims before the body is parsed.
public struct JWTAuth: Authenticator {
    public static let name = "jwt-auth"
    public static let summary = "requires a valid JSON Web Token (HS256, RS256, ES256)"

    public struct Settings: PluginSettings {
        @Setting("hmac_secrets", "HS256 secrets") public var hmacSecrets: [HMACSecret] = []
        @Setting("jwks_file", "a JWKS file with RSA (RS256) and EC P-256 (ES256) public keys") public var jwksFile: String?
        @Setting("issuer", "required value of the iss claim") public var issuer: String?
        @Setting("audience", "a value the aud claim must hold") public var audience: String?
        @Setting("leeway_s", .number(min: 0), "clock skew allowed for exp and nbf") public var leeway = 30.0
        @Setting("name_claim", "the claim that names the caller") public var nameClaim = "sub"
        @Setting("team_claim", "a claim naming the caller's team, whose policy `team_guardrails` gives") public var teamClaim: String?
        @Setting("team_guardrails", "team (the team_claim's value) to its guardrail policy, as api-key-auth's keys[].guardrails: {\"support\": {\"pii\": {\"email\": \"restore\"}}}")
        public var teamGuardrails: AnyJSON?
        @Setting("models_claim", "a claim listing the public models the caller may use (array or space-separated)")
        public var modelsClaim: String?
        @Setting("models_claim_absent", .choice(["refuse", "all"]), "a token without the models claim: may use no model (403), or every model")
        public var modelsClaimAbsent = "refuse"
        @Setting("mcp_tools_claim", "a claim listing globs over {server}__{tool} of the MCP tools the caller may use; absent: all tools")
        public var mcpToolsClaim: String?
        @Setting("algorithms", .array(.choice(["HS256", "RS256", "ES256"])), "accepted algorithms")
        public var algorithms = ["HS256", "RS256", "ES256"]
        public init() {}
    }

    public struct HMACSecret: PluginSettings {
        @Setting("kid", "the key id tokens name in their header (optional with a single secret)") public var kid: String?
        @Setting("secret", .secret, required: true, "the shared secret, at least 32 bytes; best as {\"env\": …} or {\"file\": …}")
        public var secret = ""
        public init() {}
    }

    let keys: JWTKeyCollection
    /// What `start` adds to `keys` (an actor, so not from the synchronous `init`).
    let secrets: [(kid: String?, secret: String)]
    let jwks: String?
    let context: PluginContext
    /// The algorithms each key id verifies: a key's type fixes them (an HMAC secret HS256, an
    /// RSA key RS256, an EC key ES256), so a token cannot have its HMAC signature checked as
    /// "RS256". A token naming another key id is refused (jwt-kit would fall back to its default
    /// key). A `nil` id: a token without `kid` is accepted (one unnamed secret).
    let algorithmsByKeyID: [String?: Set<String>]
    let issuer: String?
    let audience: String?
    let leeway: TimeInterval
    let nameClaim: String
    let teamClaim: String?
    /// Guardrail policies by team.
    let teamGuardrails: [String: GuardrailOverrides]
    let modelsClaim: String?
    let absentModelsMeansAll: Bool
    let mcpToolsClaim: String?
    let algorithms: Set<String>

    public init(settings: Settings, context: PluginContext) throws {
        let secrets = settings.hmacSecrets
        guard !secrets.isEmpty || settings.jwksFile != nil else { throw context.configError(nil, "give hmac_secrets, jwks_file, or both") }
        for (index, secret) in secrets.enumerated() where secret.secret.utf8.count < 32 {
            // A shorter HMAC key is weaker than the hash (RFC 7518 §3.2), and jwt-kit refuses it.
            throw context.configError("hmac_secrets[\(index)].secret", "an HS256 secret needs at least 32 bytes")
        }
        var jwks: String?
        if let jwksFile = settings.jwksFile {
            guard let text = try? String(contentsOfFile: jwksFile, encoding: .utf8) else {
                throw context.configError("jwks_file", "cannot read \(jwksFile)")
            }
            jwks = text
        }
        keys = JWTKeyCollection()
        self.secrets = secrets.map { ($0.kid, $0.secret) }
        self.jwks = jwks
        self.context = context
        var known: [String?: Set<String>] = [:]
        for secret in secrets { known[secret.kid, default: []].insert("HS256") }
        if let jwks, let set = try? JSON.parse(jwks) {
            for key in set["keys"]?.elements ?? [] {
                let algorithm: String? = switch key["kty"]?.string { case "RSA": "RS256"; case "EC": "ES256"; default: nil }
                if let algorithm { known[key["kid"]?.string, default: []].insert(algorithm) }
            }
        }
        if known.count > 1 || jwks != nil { known[nil] = nil }  // with several keys, tokens must say which
        algorithmsByKeyID = known
        issuer = settings.issuer
        audience = settings.audience
        leeway = settings.leeway
        nameClaim = settings.nameClaim
        teamClaim = settings.teamClaim
        var teams: [String: GuardrailOverrides] = [:]
        if let policies = settings.teamGuardrails?.value, !policies.isNull {
            guard policies.isObject else { throw context.configError("team_guardrails", "expected an object of team name to a guardrail policy") }
            for (team, policy) in policies.members {
                if let problem = GuardrailOverrides.problem(in: policy) {
                    throw context.configError("team_guardrails.\(team)" + (problem.path.map { ".\($0)" } ?? ""), problem.message)
                }
                teams[team] = GuardrailOverrides(json: policy)
            }
        }
        teamGuardrails = teams
        modelsClaim = settings.modelsClaim
        absentModelsMeansAll = settings.modelsClaimAbsent == "all"
        mcpToolsClaim = settings.mcpToolsClaim
        algorithms = Set(settings.algorithms)
    }

    public func start() async throws {
        for (kid, secret) in secrets {
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: kid.map { JWKIdentifier(string: $0) })
        }
        if let jwks {
            do { try await keys.add(jwksJSON: jwks) } catch { throw context.configError("jwks_file", "not a usable JWKS: \(error)") }
        }
    }

    /// The token's header: present, of an accepted algorithm that its key verifies.
    public func screen(_ headers: HTTPHeaders) -> AuthVerdict {
        guard let token = headers.bearerToken else {
            return .refused(GatewayError(.unauthorized, type: "authentication_error", "A bearer token is required: send `Authorization: Bearer TOKEN`.",
                                         code: "missing_token"))
        }
        guard let header = Self.header(token), let algorithm = header["alg"]?.string, algorithms.contains(algorithm) else {
            return .refused(Self.refusal("unsupported or missing alg"))
        }
        let keyID = header["kid"]?.string
        guard let keyAlgorithms = algorithmsByKeyID[keyID] else { return .refused(Self.refusal("unknown key id")) }
        guard keyAlgorithms.contains(algorithm) else { return .refused(Self.refusal("its alg does not match its key")) }
        return .undecided
    }

    /// The signature and the claims.
    public func verify(_ headers: HTTPHeaders) async throws -> CallerIdentity {
        let claims = try await verify(headers.bearerToken ?? "")
        guard let name = claims.values[nameClaim]?.identity else {
            throw Self.refusal("its \(nameClaim) claim does not name the caller (a string or an integer is needed)")
        }
        // A tools claim that is present but no list allows nothing, as a malformed models claim does.
        let tools = mcpToolsClaim.flatMap { claims.values[$0] }.map { claim in (claim.list ?? []).map(ToolPattern.init) }
        let allowedTools = tools.flatMap { patterns in patterns.contains { $0.text == "*" } ? nil : patterns }
        let guardrails = teamClaim.flatMap { claims.values[$0]?.identity }.flatMap { teamGuardrails[$0] } ?? .none
        guard let modelsClaim else { return CallerIdentity(name: name, allowedModels: nil, allowedTools: allowedTools, guardrails: guardrails) }
        switch claims.values[modelsClaim] {
        case nil:
            // No claim may mean every model only where the admin said so; a malformed one never does.
            return CallerIdentity(name: name, allowedModels: absentModelsMeansAll ? nil : [], allowedTools: allowedTools, guardrails: guardrails)
        case let claim?:
            return CallerIdentity(name: name, allowedModels: claim.list.map(Set.init) ?? [], allowedTools: allowedTools, guardrails: guardrails)
        }
    }

    public func describe(_ identity: CallerIdentity) -> String { "The token of `\(identity.name)`" }

    static func refusal(_ why: String) -> GatewayError {
        GatewayError(.unauthorized, type: "authentication_error", "Invalid token: \(why).", code: "invalid_token")
    }

    /// The claims of a token whose header `screen` accepted, once its signature verifies.
    func verify(_ token: String) async throws -> TokenClaims {
        let refused = Self.refusal
        let claims: TokenClaims
        do {
            claims = try await keys.verify(token, as: TokenClaims.self)
        } catch {
            throw refused("the signature does not verify")
        }
        let now = Date().timeIntervalSince1970
        guard let expires = claims.values["exp"]?.number else { throw refused("it has no exp claim") }
        guard now <= expires + leeway else { throw refused("it has expired") }
        if let notBefore = claims.values["nbf"]?.number, now + leeway < notBefore { throw refused("it is not valid yet") }
        if let issuer, claims.values["iss"]?.text != issuer { throw refused("wrong issuer") }
        if let audience, !(claims.values["aud"]?.list ?? []).contains(audience) { throw refused("wrong audience") }
        return claims
    }

    /// The token's header (jwt-kit picks the key; the algorithm list and the key ids are ours).
    static func header(_ token: String) -> JSON? {
        guard let header = token.split(separator: ".").first else { return nil }
        guard let data = Base64URL.decode(header), let json = try? JSON.parse(data), json.isObject else { return nil }
        return json
    }
}

/// Every claim of a verified token, whatever the names the admin chose.
struct TokenClaims: JWTPayload {
    var values: [String: ClaimValue]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        var values: [String: ClaimValue] = [:]
        for key in container.allKeys { values[key.stringValue] = try? container.decode(ClaimValue.self, forKey: key) }
        self.values = values
    }

    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}  // claims are checked by JWTAuth.verify

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

enum ClaimValue: Decodable, Sendable {
    case string(String)
    case number(Double)
    case strings([String])
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) { self = .string(string) }
        else if let number = try? container.decode(Double.self) { self = .number(number) }
        else if let strings = try? container.decode([String].self) { self = .strings(strings) }
        else { self = .other }
    }

    var text: String? { if case .string(let string) = self { string } else { nil } }
    /// Who a name claim names: a string, or an integer written as its decimal digits.
    var identity: String? {
        switch self {
        case .string(let string): string.isEmpty ? nil : string
        case .number(let number): number.isFinite && number.rounded() == number && abs(number) < 9.0e15 ? String(Int(number)) : nil
        default: nil
        }
    }
    var number: Double? { if case .number(let number) = self { number } else { nil } }
    /// An array claim of strings only, or a space-separated string (the OAuth `scope` style);
    /// anything else (a number, an object, a mixed array) is no list.
    var list: [String]? {
        switch self {
        case .strings(let strings): strings
        case .string(let string): string.split(separator: " ").map(String.init)
        default: nil
        }
    }
}
