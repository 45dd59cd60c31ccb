import Foundation
import Kernel
import Logging
import KernelTesting
import Testing

/// The state database on SQLite in a temp dir: migrations, the version check, statements,
/// transactions, and the stores built on it. (PostgreSQL: Tests/Integration/test_spend.py.)
@Suite struct StateDatabaseTests {
    static func temporaryURL() -> String {
        "sqlite:" + TestFolder.make("state") + "/state.db"
    }

    static func open(_ url: String = temporaryURL()) async throws -> any StateDatabase {
        var settings = DatabaseSettings()
        settings = try DatabaseSettings.load(["url": JSON(url)], path: "database")
        // SQLite submits no background job, so this work need not run.
        return try await StateDatabases.open(settings, logger: Logger(label: "test"), background: BackgroundWork())
    }

    @Test func migrationsRunOnceAndAreRecorded() async throws {
        let url = Self.temporaryURL()
        let database = try await Self.open(url)
        let versions = try await database.query("SELECT version FROM sluice_schema_migrations ORDER BY version").compactMap { $0["version"].int }
        #expect(versions == SchemaMigrations.all.map(\.version))
        await database.close()
        // Opened again: nothing to do, nothing fails.
        let again = try await Self.open(url)
        #expect(try await again.query("SELECT COUNT(*) AS n FROM sluice_schema_migrations").first?["n"].int == SchemaMigrations.all.count)
        await again.close()
    }

    @Test func aDatabaseNewerThanTheBinaryIsRefused() async throws {
        let url = Self.temporaryURL()
        let database = try await Self.open(url)
        try await database.query("INSERT INTO sluice_schema_migrations (version, applied_at_ms) VALUES (?, ?)", .integer(99), .integer(0))
        await database.close()
        do {
            _ = try await Self.open(url)
            Issue.record("a newer schema was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("version 99"))
            #expect(message.contains("version \(SchemaMigrations.latestVersion)"))
        }
    }

    @Test func transactionsCommitOrRollBack() async throws {
        let database = try await Self.open()
        defer { Task { await database.close() } }
        try await database.query("CREATE TABLE t (n BIGINT, s TEXT, d DOUBLE PRECISION)")
        _ = try await database.transaction { session in
            try await session.query("INSERT INTO t (n, s, d) VALUES (?, ?, ?)", .integer(1), .text("one"), .double(1.5))
        }
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await database.transaction { session in
                try await session.query("INSERT INTO t (n, s, d) VALUES (?, ?, ?)", .integer(2), .null, .null)
                throw Boom()
            }
        }
        let rows = try await database.query("SELECT n, s, d FROM t")
        #expect(rows.count == 1)
        #expect(rows.first?["s"] == .text("one"))
        #expect(rows.first?["d"].double == 1.5)
    }

    @Test func urlsAreParsedAndNeverShowThePassword() {
        let url = DatabaseURL("postgres://app:s3cret@db.internal:6543/sluice?sslmode=require")
        #expect(url == .postgres(host: "db.internal", port: 6543, user: "app", password: "s3cret", database: "sluice", requireTLS: true))
        #expect(url?.description.contains("s3cret") == false)
        #expect(DatabaseURL("sqlite:.sluice/sluice.db") == .sqlite(path: ".sluice/sluice.db"))
        #expect(DatabaseURL("mysql://x/y") == nil)
        #expect(DatabaseURL("postgres://host") == nil)
    }

    @Test func managedKeysAndTeams() async throws {
        let database = try await Self.open()
        defer { Task { await database.close() } }
        let store = ManagedKeyStore(database: database)
        let before = try await store.changeCounter()
        _ = try await store.createTeam(name: "research", budgetUSD: 10)
        let (key, secret) = try await store.createKey(name: "ci", fields: .init(team: .some("research"), models: ["m"], budgetUSD: .some(2)))
        #expect(key.digest == KeyDigest(of: secret))
        #expect(key.team == "research" && key.allowedModels == ["m"] && key.budgetUSD == 2)
        #expect(try await store.changeCounter() > before)
        await #expect(throws: ManagedKeyStore.Refusal.self) { try await store.createKey(name: "ci", fields: .init()) }
        await #expect(throws: ManagedKeyStore.Refusal.self) { try await store.createKey(name: "x", fields: .init(team: .some("nobody"))) }
        await #expect(throws: ManagedKeyStore.Refusal.self) { try await store.deleteTeam(named: "research") }

        let (rotated, newSecret) = try await store.rotateKey(named: "ci", graceSeconds: 60)
        #expect(rotated.digest == KeyDigest(of: newSecret))
        #expect(rotated.previousDigest == KeyDigest(of: secret))
        let updated = try await store.updateKey(named: "ci", fields: .init(team: .some(nil), disabled: true, budgetUSD: .some(nil)))
        #expect(updated.team == nil && updated.disabled && updated.budgetUSD == nil)
        #expect(updated.json["key"] == nil)
        try await store.deleteKey(named: "ci")
        #expect(try await store.key(named: "ci") == nil)
        try await store.deleteTeam(named: "research")
        #expect(try await store.teams().isEmpty)
    }

    @Test func theLedgerTotalsExactly() async throws {
        let database = try await Self.open()
        defer { Task { await database.close() } }
        let ledger = SpendLedger(database: database)
        let records = (0..<450).map { index in
            SpendLedger.Record(atMs: 1_000 + Int64(index), requestID: "r\(index)", keyName: index % 2 == 0 ? "a" : "b", team: nil,
                               model: "m", provider: "p", upstreamModel: "u", inputTokens: 2, outputTokens: 3, cachedInputTokens: 0,
                               costNanoUSD: SpendLedger.nanoUSD(0.008), status: 200)
        }
        try await ledger.append(records)
        let total = try await ledger.totals(groupedBy: nil, fromMs: nil, toMs: nil)
        #expect(total.first?.requests == 450)
        let expected: Int64 = 450 * 8_000_000
        #expect(total.first?.costNanoUSD == expected)
        let byKey = try await ledger.totals(groupedBy: .key, fromMs: 1_000, toMs: 1_100)
        #expect(byKey.map(\.requests).reduce(0, +) == 100)
        #expect(Set(byKey.compactMap(\.group)) == ["a", "b"])
        #expect(try await ledger.spent(by: .key, "a", sinceMs: 0) == 225 * 8_000_000)
    }
}
