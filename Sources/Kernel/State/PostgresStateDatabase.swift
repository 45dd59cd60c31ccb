import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// The shared state database: PostgreSQL through PostgresNIO's pooled client.
///
/// The client's `run()` is the pool's life: a job of the `BackgroundWork` it is opened with
/// (`GatewayStateDatabase`'s, which the gateway runs from before its first generation until after
/// its last background job), stopped by `close()`. It must outlast the drain and the plugins'
/// shutdown (the spend ledger flushes then), but `PostgresClient.run()` cancels itself as soon as
/// the graceful shutdown it finds in its task-locals begins, which is where the drain starts. So
/// the job runs it in a detached task, which inherits no task-locals, and awaits it, forwarding
/// cancellation: the detached task cannot outlive the job, and the job cannot outlive the gateway.
final class PostgresStateDatabase: StateDatabase {
    let kind = DatabaseKind.postgres
    private let client: PostgresClient
    private let runner: BackgroundJob
    private let logger: Logger
    let address: String

    private init(client: PostgresClient, background: BackgroundWork, logger: Logger, address: String) {
        self.client = client
        self.logger = logger
        self.address = address
        runner = background.start {
            let pool = Task.detached { await client.run() }
            await withTaskCancellationHandler { await pool.value } onCancel: { pool.cancel() }
        }
    }

    static func open(host: String, port: Int, user: String, password: String?, database: String, requireTLS: Bool,
                     maxConnections: Int, background: BackgroundWork, logger: Logger, address: String) async throws -> PostgresStateDatabase {
        var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database,
                                                         tls: requireTLS ? .require(.makeClientConfiguration()) : .disable)
        configuration.options.maximumConnections = maxConnections
        configuration.options.connectTimeout = .seconds(5)
        let opened = PostgresStateDatabase(client: PostgresClient(configuration: configuration, backgroundLogger: logger),
                                           background: background, logger: logger, address: address)
        do {
            try await opened.probe(within: Self.openTimeout)
        } catch {
            await opened.close()
            throw error
        }
        return opened
    }

    /// How long opening waits for a first answer. The pool retries a server it cannot reach for
    /// as long as a lease waits, and a lease waits without end: without this, a gateway (or
    /// `sluice check`) facing a wrong host would hang at start instead of saying so.
    static let openTimeout: Duration = .seconds(10)

    /// `SELECT 1`, refused with an error naming the address (never the password) when no answer
    /// comes within `timeout`; the waiting lease is cancelled, which PostgresNIO supports.
    private func probe(within timeout: Duration) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.query("SELECT 1") }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw DatabaseError("postgres (\(self.address)): no answer within \(timeout.components.seconds) s (is the server up and reachable?)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    func query(_ sql: String, _ parameters: [DatabaseValue]) async throws -> [DatabaseRow] {
        let query = Self.query(sql, parameters)
        do {
            return try await client.withConnection { connection in
                try await Self.collect(try await connection.query(query, logger: logger))
            }
        } catch {
            throw describe(error)
        }
    }

    func transaction<Result: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> Result) async throws -> Result {
        do {
            return try await client.withConnection { connection in
                _ = try await connection.query("BEGIN", logger: logger)
                do {
                    let result = try await body(Session(connection: connection, logger: logger))
                    _ = try await connection.query("COMMIT", logger: logger)
                    return result
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        } catch {
            throw describe(error)
        }
    }

    func close() async {
        await runner.stop()
    }

    /// PostgresNIO words its errors generically so that no detail leaks; the server's own
    /// message (a constraint, a missing table) is what an admin needs, and it holds no secret.
    private func describe(_ error: any Error) -> any Error {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return DatabaseError("postgres (\(address)): \(message)" + (error.serverInfo?[.sqlState].map { " [\($0)]" } ?? ""))
            }
            return DatabaseError("postgres (\(address)): \(error.code)")
        }
        // A transaction's own refusal (a name taken) passes through as it was thrown.
        return error
    }

    /// `?` placeholders become `$1`, `$2`, … (none of this gateway's SQL has a `?` in a literal).
    static func query(_ sql: String, _ parameters: [DatabaseValue]) -> PostgresQuery {
        var numbered = ""
        var index = 0
        for character in sql {
            if character == "?" {
                index += 1
                numbered += "$\(index)"
            } else {
                numbered.append(character)
            }
        }
        var binds = PostgresBindings(capacity: parameters.count)
        for parameter in parameters {
            switch parameter {
            case .null: binds.appendNull()
            case .integer(let value): binds.append(value)
            case .double(let value): binds.append(value)
            case .text(let text): binds.append(text)
            }
        }
        return PostgresQuery(unsafeSQL: numbered, binds: binds)
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [DatabaseRow] {
        var result: [DatabaseRow] = []
        for try await row in rows {
            var columns: [String] = [], values: [DatabaseValue] = []
            for cell in row {
                columns.append(cell.columnName)
                values.append(try value(of: cell))
            }
            result.append(DatabaseRow(columns: columns, values: values))
        }
        return result
    }

    private static func value(of cell: PostgresCell) throws -> DatabaseValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .float4, .float8: return .double(try cell.decode(Double.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .numeric: return (try? cell.decode(String.self)).flatMap(Double.init).map { .double($0) } ?? .null
        // Text and its kin; what has no text form here (`void`, from a function called for its effect) reads as NULL.
        default: return (try? cell.decode(String.self)).map { .text($0) } ?? .null
        }
    }

    private struct Session: DatabaseSession {
        let connection: PostgresConnection
        let logger: Logger
        func query(_ sql: String, _ parameters: [DatabaseValue]) async throws -> [DatabaseRow] {
            try await PostgresStateDatabase.collect(try await connection.query(PostgresStateDatabase.query(sql, parameters), logger: logger))
        }
    }
}
