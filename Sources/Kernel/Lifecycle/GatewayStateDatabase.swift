import Logging
import NIOConcurrencyHelpers

/// The gateway's hold on the manifest's state database: opened (and migrated) before the first
/// manifest's plugins are built, kept across reloads, closed once plugins are done with it: after
/// the drain, the plugins' shutdown (the spend ledger's last flush) and the last background job
/// (a retired generation's shutdown flushes its ledger too). `sluice check` and `TestGateway`
/// hold one too. Like `server.listen`, its URL takes effect on restart.
///
/// What the database runs meanwhile (PostgreSQL's connection pool) is a job of its own
/// `BackgroundWork`, not of the gateway's: that one has finished by the time the database may close.
public final class GatewayStateDatabase: Sendable {
    private let opened = NIOLockedValueBox<(url: String, database: any StateDatabase)?>(nil)
    private let work = BackgroundWork()

    public init() {}

    public var current: (any StateDatabase)? { opened.withLockedValue { $0?.database } }

    /// Runs the database's own work from before `open` until `close` has returned: the `Gateway`
    /// runs it as a child task of its `run`. `open` waits for it to start.
    public func run() async { await work.run() }

    /// Opens the database `manifest` names, if any; the error names `database.url`, never its value.
    public func open(for manifest: Manifest, logger: Logger) async throws(ManifestErrors) {
        guard let settings = manifest.database else { return }
        do {
            let database = try await StateDatabases.open(settings, logger: logger, background: work)
            opened.withLockedValue { $0 = (settings.url, database) }
            logger.info("state database open", metadata: ["database": .string(DatabaseURL(settings.url)?.description ?? "?"),
                                                          "schema_version": .stringConvertible(SchemaMigrations.latestVersion)])
        } catch {
            throw ManifestErrors([ManifestError(file: manifest.file, path: "database.url", "\(error)")])
        }
    }

    public func warnIfChanged(_ manifest: Manifest, logger: Logger) {
        let url = opened.withLockedValue { $0?.url }
        if url != manifest.database?.url {
            logger.warning("database takes effect on restart; the running gateway keeps the database it opened")
        }
    }

    /// Closes the database, if open, and ends `run`. Once.
    public func close() async {
        let database = opened.withLockedValue { opened in
            defer { opened = nil }
            return opened?.database
        }
        await database?.close()
        work.finish()
    }

    /// Runs `body` with the database `manifest` names open (`nil` when it names none), for a
    /// program or a test without a `Gateway` (`sluice check`); closed when `body` returns.
    public static func withOpen<T>(_ manifest: Manifest, logger: Logger,
                                   _ body: ((any StateDatabase)?) async throws -> T) async throws -> T {
        let holder = GatewayStateDatabase()
        let result = await withDiscardingTaskGroup(returning: Result<T, any Error>.self) { group in
            group.addTask { await holder.run() }
            let result: Result<T, any Error>
            do {
                try await holder.open(for: manifest, logger: logger)
                result = .success(try await body(holder.current))
            } catch {
                result = .failure(error)
            }
            await holder.close()
            return result
        }
        return try result.get()
    }
}
