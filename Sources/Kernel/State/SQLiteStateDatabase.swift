import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SQLiteNIO

/// The embedded state database: one SQLite file, one connection whose calls run on NIO's thread
/// pool (never an event loop). Statements and transactions take turns (`SerialGate`); the file
/// is in WAL mode with a busy timeout, so `sluice keys …` may write while the gateway runs.
final class SQLiteStateDatabase: StateDatabase {
    let kind = DatabaseKind.sqlite
    private let connection: SQLiteConnection
    private let gate = SerialGate()
    let path: String

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    static func open(path: String, logger: Logger) async throws -> SQLiteStateDatabase {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw DatabaseError("cannot create the folder of sqlite:\(path): \(error.localizedDescription)")
            }
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw DatabaseError("cannot open sqlite:\(path): \(error)")
        }
        let database = SQLiteStateDatabase(connection: connection, path: path)
        try await database.query("PRAGMA busy_timeout = 5000")
        try await database.query("PRAGMA journal_mode = WAL")
        try await database.query("PRAGMA synchronous = NORMAL")
        return database
    }

    func query(_ sql: String, _ parameters: [DatabaseValue]) async throws -> [DatabaseRow] {
        try await gate.withGate { try await run(sql, parameters) }
    }

    func transaction<Result: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> Result) async throws -> Result {
        try await gate.withGate {
            // IMMEDIATE: take the write lock now, so two processes never both read then both write.
            _ = try await run("BEGIN IMMEDIATE", [])
            do {
                let result = try await body(Session(database: self))
                _ = try await run("COMMIT", [])
                return result
            } catch {
                _ = try? await run("ROLLBACK", [])
                throw error
            }
        }
    }

    func close() async {
        try? await connection.close()
    }

    /// Inside the gate: the caller holds it.
    fileprivate func run(_ sql: String, _ parameters: [DatabaseValue]) async throws -> [DatabaseRow] {
        let binds = parameters.map { value -> SQLiteData in
            switch value {
            case .null: .null
            case .integer(let value): .integer(SQLiteInt64(value))
            case .double(let value): .float(value)
            case .text(let text): .text(text)
            }
        }
        let collected = RowCollector()
        do {
            try await connection.query(sql, binds) { row in collected.append(row) }
        } catch {
            throw DatabaseError("sqlite: \(error)")
        }
        return collected.rows.map { row in
            DatabaseRow(columns: row.columns.map(\.name), values: row.columns.map { column in
                switch column.data {
                case .integer(let value): .integer(Int64(value))
                case .float(let value): .double(value)
                case .text(let text): .text(text)
                case .blob(let buffer): .text(String(buffer: buffer))
                case .null: .null
                }
            })
        }
    }

    private struct Session: DatabaseSession {
        let database: SQLiteStateDatabase
        func query(_ sql: String, _ parameters: [DatabaseValue]) async throws -> [DatabaseRow] {
            try await database.run(sql, parameters)
        }
    }
}

/// Rows as SQLiteNIO hands them over, one callback each, from its thread pool.
private final class RowCollector: Sendable {
    private let box = NIOLockedValueBox<[SQLiteRow]>([])
    func append(_ row: SQLiteRow) { box.withLockedValue { $0.append(row) } }
    var rows: [SQLiteRow] { box.withLockedValue { $0 } }
}
