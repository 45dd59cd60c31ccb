import Logging
import NIOConcurrencyHelpers

/// The gateway's hold on the manifest's state database: opened (and migrated) before the first
/// manifest's plugins are built, kept across reloads, closed after the drain, once plugins (the
/// spend ledger's last flush) are done with it. `sluice check` and `TestGateway` hold one too. Like `server.listen`, its URL takes effect on restart.
public final class GatewayStateDatabase: Sendable {
    private let opened = NIOLockedValueBox<(url: String, database: any StateDatabase)?>(nil)

    public init() {}

    public var current: (any StateDatabase)? { opened.withLockedValue { $0?.database } }

    /// Opens the database `manifest` names, if any; the error names `database.url`, never its value.
    public func open(for manifest: Manifest, logger: Logger) async throws(ManifestErrors) {
        guard let settings = manifest.database else { return }
        do {
            let database = try await StateDatabases.open(settings, logger: logger)
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

    public func close() async {
        let database = opened.withLockedValue { opened in
            defer { opened = nil }
            return opened?.database
        }
        await database?.close()
    }
}
