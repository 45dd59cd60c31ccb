import Logging

/// Opens the manifest's database and brings its schema up to date.
public enum StateDatabases {
    /// - Parameter background: where a PostgreSQL database's connection pool runs, until `close()`;
    ///   it must be running (or start soon) for the database to answer. SQLite submits nothing.
    public static func open(_ settings: DatabaseSettings, logger: Logger, background: BackgroundWork) async throws -> any StateDatabase {
        guard let url = DatabaseURL(settings.url) else {
            throw DatabaseError("database.url: expected sqlite:PATH or postgres://user:password@host:port/database")
        }
        let database: any StateDatabase
        switch url {
        case .sqlite(let path):
            database = try await SQLiteStateDatabase.open(path: path, logger: logger)
        case .postgres(let host, let port, let user, let password, let name, let requireTLS):
            database = try await PostgresStateDatabase.open(host: host, port: port, user: user, password: password, database: name,
                                                            requireTLS: requireTLS, maxConnections: settings.maxConnections,
                                                            background: background, logger: logger, address: url.description)
        }
        do {
            try await SchemaMigrations.migrate(database)
        } catch {
            await database.close()
            throw error
        }
        return database
    }
}
