import Crypto
import Foundation

/// Reads and writes managed keys and teams. Every write bumps the `keys` change counter in the
/// same transaction, so replicas polling the counter see it (`api-key-auth`'s cache).
public struct ManagedKeyStore: Sendable {
    public let database: any StateDatabase

    public init(database: any StateDatabase) { self.database = database }

    /// A refusal the admin API answers with 400, 404 or 409.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public enum Kind: Sendable { case invalid, notFound, conflict }
        public var kind: Kind
        public var message: String
        public var description: String { message }
    }

    /// What a create or an update sets; a double optional clears a field with `.some(nil)`.
    public struct KeyFields: Sendable {
        public var team: String??
        public var models: [String]?
        public var expiresAtMs: Int64??
        public var disabled: Bool?
        public var budgetUSD: Double??
        public init(team: String?? = nil, models: [String]? = nil, expiresAtMs: Int64?? = nil, disabled: Bool? = nil, budgetUSD: Double?? = nil) {
            self.team = team
            self.models = models
            self.expiresAtMs = expiresAtMs
            self.disabled = disabled
            self.budgetUSD = budgetUSD
        }
    }

    /// A new random key: `sk-sluice-` and 43 characters of base64url (256 bits).
    public static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "sk-sluice-" + Base64URL.encode(Data(bytes))
    }

    static let keyColumns = "name, digest, previous_digest, previous_valid_until_ms, team, models, expires_at_ms, disabled, budget_usd, created_at_ms, updated_at_ms"

    public static func checkName(_ name: String, _ what: String) throws {
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw Refusal(kind: .invalid, message: "\(what) name must be 1–128 letters, digits, '-', '_', '.' or '@'")
        }
    }

    // MARK: Keys

    /// Creates a key; returns it with the secret (shown this once).
    public func createKey(name: String, fields: KeyFields) async throws -> (key: ManagedKey, secret: String) {
        try Self.checkName(name, "a key's")
        if let budget = fields.budgetUSD ?? nil, budget < 0 { throw Refusal(kind: .invalid, message: "budget_usd must be 0 or more") }
        let secret = Self.newSecret()
        let now = WallClock.milliseconds()
        let key = try await database.transaction { session in
            guard try await session.query("SELECT name FROM sluice_keys WHERE name = ?", .text(name)).isEmpty else {
                throw Refusal(kind: .conflict, message: "a key named \"\(name)\" already exists")
            }
            let team = fields.team ?? nil
            if let team { try await Self.requireTeam(team, session) }
            try await session.query("""
                INSERT INTO sluice_keys (\(Self.keyColumns)) VALUES (?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, ?)
                """, .text(name), .text(Hex.encode(KeyDigest(of: secret).bytes)), DatabaseValue(team),
                .text((fields.models ?? ["*"]).joined(separator: "\n")), DatabaseValue(fields.expiresAtMs ?? nil),
                DatabaseValue(fields.disabled ?? false), DatabaseValue(fields.budgetUSD ?? nil), .integer(now), .integer(now))
            try await Self.bump(session)
            return try await Self.key(name, session)!
        }
        return (key, secret)
    }

    public func keys() async throws -> [ManagedKey] {
        try await database.query("SELECT \(Self.keyColumns) FROM sluice_keys ORDER BY name").map(ManagedKey.init(row:))
    }

    public func key(named name: String) async throws -> ManagedKey? {
        try await database.query("SELECT \(Self.keyColumns) FROM sluice_keys WHERE name = ?", .text(name)).first.map(ManagedKey.init(row:))
    }

    public func updateKey(named name: String, fields: KeyFields) async throws -> ManagedKey {
        if let budget = fields.budgetUSD ?? nil, budget < 0 { throw Refusal(kind: .invalid, message: "budget_usd must be 0 or more") }
        return try await database.transaction { session in
            guard var key = try await Self.key(name, session) else { throw Self.noKey(name) }
            if let team = fields.team {
                if let team { try await Self.requireTeam(team, session) }
                key.team = team
            }
            if let models = fields.models { key.models = models }
            if let expires = fields.expiresAtMs { key.expiresAtMs = expires }
            if let disabled = fields.disabled { key.disabled = disabled }
            if let budget = fields.budgetUSD { key.budgetUSD = budget }
            try await session.query("""
                UPDATE sluice_keys SET team = ?, models = ?, expires_at_ms = ?, disabled = ?, budget_usd = ?, updated_at_ms = ? WHERE name = ?
                """, DatabaseValue(key.team), .text(key.models.joined(separator: "\n")), DatabaseValue(key.expiresAtMs),
                DatabaseValue(key.disabled), DatabaseValue(key.budgetUSD), .integer(WallClock.milliseconds()), .text(name))
            try await Self.bump(session)
            return try await Self.key(name, session)!
        }
    }

    /// Replaces the key's secret; the old one stays valid for `graceSeconds` (0: not at all).
    public func rotateKey(named name: String, graceSeconds: Double) async throws -> (key: ManagedKey, secret: String) {
        guard graceSeconds >= 0, graceSeconds <= 366 * 86_400 else {
            throw Refusal(kind: .invalid, message: "grace_period_s must be between 0 and 31622400 (a year)")
        }
        let secret = Self.newSecret()
        let now = WallClock.milliseconds()
        let key = try await database.transaction { session in
            guard let old = try await Self.key(name, session) else { throw Self.noKey(name) }
            let until = graceSeconds > 0 ? now + Int64(graceSeconds * 1000) : nil
            try await session.query("""
                UPDATE sluice_keys SET digest = ?, previous_digest = ?, previous_valid_until_ms = ?, updated_at_ms = ? WHERE name = ?
                """, .text(Hex.encode(KeyDigest(of: secret).bytes)), until == nil ? .null : .text(Hex.encode(old.digest.bytes)),
                DatabaseValue(until), .integer(now), .text(name))
            try await Self.bump(session)
            return try await Self.key(name, session)!
        }
        return (key, secret)
    }

    /// Revokes a key: it is deleted (its ledger rows keep its name).
    public func deleteKey(named name: String) async throws {
        try await database.transaction { session in
            guard try await Self.key(name, session) != nil else { throw Self.noKey(name) }
            try await session.query("DELETE FROM sluice_keys WHERE name = ?", .text(name))
            try await Self.bump(session)
        }
    }

    // MARK: Teams

    public func createTeam(name: String, budgetUSD: Double?) async throws -> Team {
        try Self.checkName(name, "a team's")
        if let budgetUSD, budgetUSD < 0 { throw Refusal(kind: .invalid, message: "budget_usd must be 0 or more") }
        let now = WallClock.milliseconds()
        return try await database.transaction { session in
            guard try await session.query("SELECT name FROM sluice_teams WHERE name = ?", .text(name)).isEmpty else {
                throw Refusal(kind: .conflict, message: "a team named \"\(name)\" already exists")
            }
            try await session.query("INSERT INTO sluice_teams (name, budget_usd, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?)",
                                    .text(name), DatabaseValue(budgetUSD), .integer(now), .integer(now))
            try await Self.bump(session)
            return try await Self.team(name, session)!
        }
    }

    public func teams() async throws -> [Team] {
        try await database.query("SELECT name, budget_usd, created_at_ms, updated_at_ms FROM sluice_teams ORDER BY name").map(Team.init(row:))
    }

    public func team(named name: String) async throws -> Team? {
        try await database.query("SELECT name, budget_usd, created_at_ms, updated_at_ms FROM sluice_teams WHERE name = ?", .text(name))
            .first.map(Team.init(row:))
    }

    public func updateTeam(named name: String, budgetUSD: Double??) async throws -> Team {
        if let budget = budgetUSD ?? nil, budget < 0 { throw Refusal(kind: .invalid, message: "budget_usd must be 0 or more") }
        return try await database.transaction { session in
            guard var team = try await Self.team(name, session) else { throw Self.noTeam(name) }
            if let budgetUSD { team.budgetUSD = budgetUSD }
            try await session.query("UPDATE sluice_teams SET budget_usd = ?, updated_at_ms = ? WHERE name = ?",
                                    DatabaseValue(team.budgetUSD), .integer(WallClock.milliseconds()), .text(name))
            try await Self.bump(session)
            return try await Self.team(name, session)!
        }
    }

    /// Deletes a team that no key belongs to.
    public func deleteTeam(named name: String) async throws {
        try await database.transaction { session in
            guard try await Self.team(name, session) != nil else { throw Self.noTeam(name) }
            let members = try await session.query("SELECT name FROM sluice_keys WHERE team = ? ORDER BY name", .text(name)).compactMap { $0["name"].string }
            guard members.isEmpty else {
                throw Refusal(kind: .conflict, message: "team \"\(name)\" still has keys (\(members.prefix(5).joined(separator: ", "))); move or revoke them first")
            }
            try await session.query("DELETE FROM sluice_teams WHERE name = ?", .text(name))
            try await Self.bump(session)
        }
    }

    // MARK: Changes

    /// Bumped by every write to keys or teams.
    public func changeCounter() async throws -> Int64 {
        Int64(try await database.query("SELECT counter FROM sluice_change_counters WHERE name = 'keys'").first?["counter"].int ?? 0)
    }

    private static func bump(_ session: any DatabaseSession) async throws {
        try await session.query("UPDATE sluice_change_counters SET counter = counter + 1 WHERE name = 'keys'")
    }

    private static func key(_ name: String, _ session: any DatabaseSession) async throws -> ManagedKey? {
        try await session.query("SELECT \(keyColumns) FROM sluice_keys WHERE name = ?", .text(name)).first.map(ManagedKey.init(row:))
    }

    private static func team(_ name: String, _ session: any DatabaseSession) async throws -> Team? {
        try await session.query("SELECT name, budget_usd, created_at_ms, updated_at_ms FROM sluice_teams WHERE name = ?", .text(name))
            .first.map(Team.init(row:))
    }

    private static func requireTeam(_ name: String, _ session: any DatabaseSession) async throws {
        guard try await team(name, session) != nil else { throw Refusal(kind: .invalid, message: "no team named \"\(name)\"; create it first") }
    }

    private static func noKey(_ name: String) -> Refusal { Refusal(kind: .notFound, message: "no key named \"\(name)\"") }
    private static func noTeam(_ name: String) -> Refusal { Refusal(kind: .notFound, message: "no team named \"\(name)\"") }
}
