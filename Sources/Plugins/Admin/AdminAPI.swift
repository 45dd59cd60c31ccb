import Foundation
import Kernel
import NIOHTTP1

/// Manages keys and teams and reports spend, as JSON over HTTP under `path_prefix` (default
/// `/admin`): the routes in `AdminOpenAPI`, served outside the pipeline and authorised by this
/// plugin's own `admin_keys` only (401 without one, 403 for a client key). Keys, teams and spend
/// live in the manifest's state database; every replica sees a change within ~2 s. docs/ADMIN_API.md.
public struct AdminAPI: Middleware {
    public static let name = "admin-api"
    public static let summary = "manage keys and teams, read spend: JSON over HTTP under /admin, for admin keys only"

    public struct Settings: PluginSettings {
        @Setting("admin_keys", required: true, "the keys that may call the admin API (Authorization: Bearer)") public var adminKeys: [KeySettings] = []
        @Setting("path_prefix", "where the routes live") public var pathPrefix = "/admin"
        public init() {}
    }

    let adminKeys: [KeyDigest]
    let prefix: String
    let store: ManagedKeyStore
    let ledger: SpendLedger
    /// To tell a client's managed key (403) from an unknown one (401).
    let clientKeys: ManagedKeyDirectory

    public init(settings: Settings, context: PluginContext) throws {
        var digests: [KeyDigest] = []
        for (index, entry) in settings.adminKeys.enumerated() {
            do { digests.append(try entry.named().digest) } catch {
                throw context.configError("admin_keys[\(index)]" + (error.field.map { ".\($0)" } ?? ""), error.message)
            }
        }
        guard !digests.isEmpty else { throw context.configError("admin_keys", "needs at least one key") }
        var prefix = settings.pathPrefix
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard prefix.hasPrefix("/"), prefix.count > 1, !prefix.hasPrefix("/v1/"), prefix != "/v1" else {
            throw context.configError("path_prefix", "expected a path such as /admin, outside /v1")
        }
        let database = try context.requireDatabase(for: nil, "admin-api")
        adminKeys = digests
        self.prefix = prefix
        store = ManagedKeyStore(database: database)
        ledger = SpendLedger(database: database)
        clientKeys = ManagedKeyDirectory(database: database, background: context.background, logger: context.logger)
    }

    public func start() async throws { try await clientKeys.start() }
    public func shutdown() async { await clientKeys.stop() }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse { try await next(request) }

    public var routes: [PluginRoute] {
        ["GET", "POST", "PATCH", "DELETE"].map { method in
            PluginRoute(method: method, path: prefix + "/*", access: .public) { request in try await answer(request) }
        }
    }

    // MARK: Serving

    func answer(_ request: GatewayRequest) async throws -> GatewayResponse {
        try authorise(request)
        let rest = request.path.dropFirst(prefix.count)
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { String($0).removingPercentEncoding ?? String($0) }
        let method = request.method.rawValue
        let allocator = request.context.allocator
        do {
            switch (method, parts.count, parts.first ?? "") {
            case ("GET", 1, "openapi.json"):
                return .json(AdminOpenAPI.document(prefix: prefix), allocator: allocator)
            case ("POST", 1, "keys"):
                let body = try Self.body(request)
                guard let name = body["name"]?.string else { throw GatewayError.invalidRequest("name is required", param: "name") }
                let (key, secret) = try await store.createKey(name: name, fields: try Self.keyFields(body, creating: true))
                return .json(key.json(showing: secret), status: .created, allocator: allocator)
            case ("GET", 1, "keys"):
                return .json(["data": JSON(array: try await store.keys().map(\.json))], allocator: allocator)
            case ("GET", 2, "keys"):
                guard let key = try await store.key(named: parts[1]) else { throw Self.notFound("key", parts[1]) }
                return .json(key.json, allocator: allocator)
            case ("PATCH", 2, "keys"):
                let key = try await store.updateKey(named: parts[1], fields: try Self.keyFields(try Self.body(request), creating: false))
                return .json(key.json, allocator: allocator)
            case ("DELETE", 2, "keys"):
                try await store.deleteKey(named: parts[1])
                return .json(["name": JSON(parts[1]), "deleted": true], allocator: allocator)
            case ("POST", 3, "keys") where parts[2] == "rotate":
                var body = JSON.object()
                if request.body.raw.readableBytes > 0 { body = try Self.body(request) }
                guard let grace = (body["grace_period_s"] ?? JSON(0)).double else {
                    throw GatewayError.invalidRequest("grace_period_s must be a number of seconds", param: "grace_period_s")
                }
                let (key, secret) = try await store.rotateKey(named: parts[1], graceSeconds: grace)
                return .json(key.json(showing: secret), allocator: allocator)
            case ("POST", 1, "teams"):
                let body = try Self.body(request)
                guard let name = body["name"]?.string else { throw GatewayError.invalidRequest("name is required", param: "name") }
                try Self.checkMembers(body, ["name", "budget_usd"])
                let team = try await store.createTeam(name: name, budgetUSD: try Self.budget(body) ?? nil)
                return .json(team.json, status: .created, allocator: allocator)
            case ("GET", 1, "teams"):
                return .json(["data": JSON(array: try await store.teams().map(\.json))], allocator: allocator)
            case ("GET", 2, "teams"):
                guard let team = try await store.team(named: parts[1]) else { throw Self.notFound("team", parts[1]) }
                return .json(team.json, allocator: allocator)
            case ("PATCH", 2, "teams"):
                let body = try Self.body(request)
                try Self.checkMembers(body, ["budget_usd"])
                return .json(try await store.updateTeam(named: parts[1], budgetUSD: try Self.budget(body)).json, allocator: allocator)
            case ("DELETE", 2, "teams"):
                try await store.deleteTeam(named: parts[1])
                return .json(["name": JSON(parts[1]), "deleted": true], allocator: allocator)
            case ("GET", 1, "spend"):
                return .json(try await spend(query: Self.query(of: request.uri)), allocator: allocator)
            default:
                throw GatewayError.notFound("unknown admin route \(method) \(request.path); see GET \(prefix)/openapi.json", code: "unknown_url")
            }
        } catch let refusal as ManagedKeyStore.Refusal {
            switch refusal.kind {
            case .invalid: throw GatewayError.invalidRequest(refusal.message)
            case .notFound: throw GatewayError.notFound(refusal.message, code: "not_found")
            case .conflict: throw GatewayError(.conflict, type: "invalid_request_error", refusal.message, code: "conflict")
            }
        } catch let error as DatabaseError {
            request.context.logger.error("admin-api: state database failed", metadata: ["error": .string(error.message)])
            throw GatewayError(.serviceUnavailable, type: "server_error", "the state database cannot be reached; retry shortly", code: "database_unavailable")
        }
    }

    /// Admin keys only: no key 401, a client's key 403, anything else 401.
    func authorise(_ request: GatewayRequest) throws {
        guard let presented = request.headers.presentedKey else {
            throw GatewayError(.unauthorized, type: "authentication_error", "The admin API needs an admin key: send `Authorization: Bearer KEY`.",
                               code: "missing_admin_key")
        }
        if KeyDigest.match(presented, in: adminKeys) != nil { return }
        if request.context.credentials.contains(presented) || clientKeys.lookup(KeyDigest(of: presented)) != nil {
            throw GatewayError(.forbidden, type: "permission_error", "This key may not use the admin API; it needs an admin key.", code: "not_admin_key")
        }
        throw GatewayError(.unauthorized, type: "authentication_error", "Incorrect admin key provided.", code: "invalid_admin_key")
    }

    func spend(query: [String: String]) async throws -> JSON {
        var grouping: SpendLedger.Grouping?
        if let by = query["group_by"] {
            guard let parsed = SpendLedger.Grouping(rawValue: by) else {
                throw GatewayError.invalidRequest("group_by must be key, team or model", param: "group_by")
            }
            grouping = parsed
        }
        func time(_ name: String) throws -> Int64? {
            guard let text = query[name] else { return nil }
            guard let ms = ISO8601.milliseconds(text) else {
                throw GatewayError.invalidRequest("\(name) must be an ISO 8601 time such as 2025-06-01T00:00:00Z or a date", param: name)
            }
            return ms
        }
        let from = try time("from"), to = try time("to")
        let totals = try await ledger.totals(groupedBy: grouping, fromMs: from, toMs: to)
        var result: [(String, JSON)] = [
            ("group_by", grouping.map { JSON($0.rawValue) } ?? .null),
            ("from", from.map { JSON(ISO8601.string(ms: $0)) } ?? .null),
            ("to", to.map { JSON(ISO8601.string(ms: $0)) } ?? .null),
        ]
        if grouping == nil {
            result.append(("total", (totals.first ?? .zero).json(groupedBy: nil)))
        } else {
            result.append(("data", JSON(array: totals.map { $0.json(groupedBy: grouping) })))
        }
        return JSON(object: result)
    }

    // MARK: Reading requests

    static func body(_ request: GatewayRequest) throws -> JSON {
        guard let json = try? JSON.parse(request.body.raw), json.isObject else {
            throw GatewayError.invalidRequest("the request body must be a JSON object")
        }
        return json
    }

    static func checkMembers(_ body: JSON, _ known: Set<String>) throws {
        if let unknown = body.keys.first(where: { !known.contains($0) }) {
            throw GatewayError.invalidRequest("unknown field \(unknown); known: \(known.sorted().joined(separator: ", "))", param: unknown)
        }
    }

    static func budget(_ body: JSON) throws -> Double?? {
        guard let value = body["budget_usd"] else { return nil }
        if value.isNull { return .some(nil) }
        guard let usd = value.double, usd >= 0 else { throw GatewayError.invalidRequest("budget_usd must be a number of 0 or more, or null", param: "budget_usd") }
        return .some(usd)
    }

    static func keyFields(_ body: JSON, creating: Bool) throws -> ManagedKeyStore.KeyFields {
        try checkMembers(body, creating ? ["name", "team", "models", "expires_at", "disabled", "budget_usd"]
                                        : ["team", "models", "expires_at", "disabled", "budget_usd"])
        var fields = ManagedKeyStore.KeyFields()
        if let team = body["team"] {
            guard team.isNull || team.string != nil else { throw GatewayError.invalidRequest("team must be a string or null", param: "team") }
            fields.team = .some(team.string)
        }
        if let models = body["models"] {
            let names = models.elements.compactMap(\.string)
            guard models.isArray, names.count == models.count, !names.isEmpty else {
                throw GatewayError.invalidRequest("models must be a non-empty array of model names, or [\"*\"]", param: "models")
            }
            fields.models = names
        }
        if let expires = body["expires_at"] {
            if expires.isNull { fields.expiresAtMs = .some(nil) } else {
                guard let text = expires.string, let ms = ISO8601.milliseconds(text) else {
                    throw GatewayError.invalidRequest("expires_at must be an ISO 8601 time such as 2025-12-31T23:59:59Z, or null", param: "expires_at")
                }
                fields.expiresAtMs = .some(ms)
            }
        }
        if let disabled = body["disabled"] {
            guard let flag = disabled.bool else { throw GatewayError.invalidRequest("disabled must be true or false", param: "disabled") }
            fields.disabled = flag
        }
        fields.budgetUSD = try budget(body)
        return fields
    }

    static func notFound(_ what: String, _ name: String) -> GatewayError {
        GatewayError.notFound("no \(what) named \"\(name)\"", code: "not_found")
    }

    static func query(of uri: String) -> [String: String] {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[1])) : ""
            result[name] = value
        }
        return result
    }
}
