import Foundation

/// The state database's schema, versioned: each migration runs once, in order, when the gateway
/// (or a `sluice` command) opens the database, and is recorded in `sluice_schema_migrations`.
/// A database already migrated past what this binary knows is refused: an older binary must not
/// write into tables whose meaning has changed under it.
///
/// Every statement is written in the SQL both SQLite and PostgreSQL speak (see `StateDatabase`).
public enum SchemaMigrations {
    public struct Migration: Sendable {
        public var version: Int
        public var summary: String
        public var statements: [String]
    }

    public static let all: [Migration] = [
        Migration(version: 1, summary: "managed keys, teams, the change counter and the spend ledger", statements: [
            """
            CREATE TABLE sluice_teams (
              name TEXT PRIMARY KEY,
              budget_usd DOUBLE PRECISION,
              created_at_ms BIGINT NOT NULL,
              updated_at_ms BIGINT NOT NULL)
            """,
            """
            CREATE TABLE sluice_keys (
              name TEXT PRIMARY KEY,
              digest TEXT NOT NULL UNIQUE,
              previous_digest TEXT,
              previous_valid_until_ms BIGINT,
              team TEXT,
              models TEXT NOT NULL,
              expires_at_ms BIGINT,
              disabled BIGINT NOT NULL DEFAULT 0,
              budget_usd DOUBLE PRECISION,
              created_at_ms BIGINT NOT NULL,
              updated_at_ms BIGINT NOT NULL)
            """,
            // One row per kind of state; every write bumps it, and replicas poll it instead of the tables.
            "CREATE TABLE sluice_change_counters (name TEXT PRIMARY KEY, counter BIGINT NOT NULL)",
            "INSERT INTO sluice_change_counters (name, counter) VALUES ('keys', 0)",
            """
            CREATE TABLE sluice_spend_ledger (
              at_ms BIGINT NOT NULL,
              request_id TEXT NOT NULL,
              key_name TEXT,
              team TEXT,
              model TEXT NOT NULL,
              provider TEXT,
              upstream_model TEXT,
              input_tokens BIGINT NOT NULL,
              output_tokens BIGINT NOT NULL,
              cached_input_tokens BIGINT NOT NULL,
              cost_nano_usd BIGINT NOT NULL,
              status BIGINT NOT NULL)
            """,
            "CREATE INDEX sluice_spend_ledger_at ON sluice_spend_ledger (at_ms)",
        ]),
    ]

    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// Brings the database up to `latestVersion`; refuses one that is newer. Replicas starting
    /// at once take turns: SQLite's write lock, PostgreSQL's advisory lock.
    public static func migrate(_ database: any StateDatabase, migrations: [Migration] = all) async throws {
        let latest = migrations.last?.version ?? 0
        try await database.transaction { session in
            if database.kind == .postgres { try await session.query("SELECT pg_advisory_xact_lock(7305925346)") }
            try await session.query("CREATE TABLE IF NOT EXISTS sluice_schema_migrations (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)")
            let current = try await session.query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS version FROM sluice_schema_migrations")
                .first?["version"].int ?? 0
            guard current <= latest else {
                throw DatabaseError("the database's schema is at version \(current), newer than this sluice knows (version \(latest)); "
                                    + "run a sluice at least as new as the one that migrated it, or name another database")
            }
            for migration in migrations where migration.version > current {
                for statement in migration.statements { try await session.query(statement) }
                try await session.query("INSERT INTO sluice_schema_migrations (version, applied_at_ms) VALUES (?, ?)",
                                        .integer(Int64(migration.version)), .integer(WallClock.milliseconds()))
            }
        }
    }
}

/// Wall-clock time as the database stores it: Unix milliseconds.
public enum WallClock {
    public static func milliseconds(_ date: Date = Date()) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}
