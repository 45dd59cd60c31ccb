import ArgumentParser
import Foundation
import Kernel
import Logging

/// What `sluice keys` and `sluice spend` share: the manifest's database, opened (and migrated)
/// as the gateway would, and JSON printed to stdout.
struct StateDatabaseOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The manifest whose database to use.")
    var config = "plugins.json"

    func withDatabase<Result>(_ registry: PluginRegistry, _ body: (any StateDatabase) async throws -> Result) async throws -> Result {
        let environment = ProcessInfo.processInfo.environment
        let manifest: Manifest
        do { manifest = try ManifestReader(registry: registry, environment: environment).read(file: config) } catch {
            throw ValidationError("\(error)")
        }
        guard let settings = manifest.database else {
            throw ValidationError("\(config) names no database; add \"database\": {\"url\": \"sqlite:.sluice/sluice.db\"} at its top")
        }
        // A PostgreSQL database's pool runs as a job of this background work, which has ended
        // when this returns (the database is closed first).
        return try await BackgroundWork.withRunning { background in
            let database: any StateDatabase
            do {
                database = try await StateDatabases.open(settings, logger: Logger(label: "sluice.cli") { _ in SwiftLogNoOpLogHandler() },
                                                         background: background)
            } catch {
                throw ValidationError("\(config): database.url: \(error)")
            }
            do {
                let result = try await body(database)
                await database.close()
                return result
            } catch let refusal as ManagedKeyStore.Refusal {
                await database.close()
                throw ValidationError(refusal.message)
            } catch {
                await database.close()
                throw error
            }
        }
    }
}

func printJSON(_ json: JSON) {
    print(json.description)
}

struct KeysCommand<Program: GatewayProgram>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        commandName: "keys",
        abstract: "Manage the managed keys in the manifest's database (api-key-auth with \"managed\": true).",
        subcommands: [Create.self, List.self, Show.self, Update.self, Rotate.self, Revoke.self]) }

    /// Options a key's create and update share.
    struct KeyOptions: ParsableArguments {
        @Option(help: "The key's team (an existing team); \"\" for none.") var team: String?
        @Option(help: "Comma-separated public models the key may use; \"*\" for all.") var models: String?
        @Option(help: "ISO 8601 time after which the key is refused; \"\" for never.") var expiresAt: String?
        @Option(help: "Spend cap in USD per budget period; \"\" for none.") var budgetUsd: String?
        @Flag(inversion: .prefixedNo, help: "Refuse the key (or accept it again).") var disabled: Bool?

        func fields() throws -> ManagedKeyStore.KeyFields {
            var fields = ManagedKeyStore.KeyFields()
            if let team { fields.team = .some(team.isEmpty ? nil : team) }
            if let models { fields.models = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            if let expiresAt {
                if expiresAt.isEmpty { fields.expiresAtMs = .some(nil) } else {
                    guard let ms = ISO8601.milliseconds(expiresAt) else { throw ValidationError("--expires-at: expected an ISO 8601 time such as 2025-12-31T23:59:59Z") }
                    fields.expiresAtMs = .some(ms)
                }
            }
            if let budgetUsd {
                if budgetUsd.isEmpty { fields.budgetUSD = .some(nil) } else {
                    guard let usd = Double(budgetUsd), usd >= 0 else { throw ValidationError("--budget-usd: expected a number of 0 or more") }
                    fields.budgetUSD = .some(usd)
                }
            }
            fields.disabled = disabled
            return fields
        }
    }

    struct Create: AsyncParsableCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Create a key and print it (with the key itself, shown this once).") }
        @OptionGroup var database: StateDatabaseOptions
        @Argument(help: "The key's name.") var name: String
        @OptionGroup var options: KeyOptions
        func run() async throws {
            let fields = try options.fields()
            try await database.withDatabase(Program.registry()) { db in
                let (key, secret) = try await ManagedKeyStore(database: db).createKey(name: name, fields: fields)
                printJSON(key.json(showing: secret))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "List the keys (never the keys themselves).") }
        @OptionGroup var database: StateDatabaseOptions
        func run() async throws {
            try await database.withDatabase(Program.registry()) { db in
                printJSON(["data": JSON(array: try await ManagedKeyStore(database: db).keys().map(\.json))])
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Show one key.") }
        @OptionGroup var database: StateDatabaseOptions
        @Argument(help: "The key's name.") var name: String
        func run() async throws {
            try await database.withDatabase(Program.registry()) { db in
                guard let key = try await ManagedKeyStore(database: db).key(named: name) else { throw ValidationError("no key named \"\(name)\"") }
                printJSON(key.json)
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Change a key's team, models, expiry, budget or disabled flag.") }
        @OptionGroup var database: StateDatabaseOptions
        @Argument(help: "The key's name.") var name: String
        @OptionGroup var options: KeyOptions
        func run() async throws {
            let fields = try options.fields()
            try await database.withDatabase(Program.registry()) { db in
                printJSON(try await ManagedKeyStore(database: db).updateKey(named: name, fields: fields).json)
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Give a key a new secret (printed once); the old one works for the grace period.") }
        @OptionGroup var database: StateDatabaseOptions
        @Argument(help: "The key's name.") var name: String
        @Option(help: "Seconds the old key stays valid.") var gracePeriodS: Double = 0
        func run() async throws {
            try await database.withDatabase(Program.registry()) { db in
                let (key, secret) = try await ManagedKeyStore(database: db).rotateKey(named: name, graceSeconds: gracePeriodS)
                printJSON(key.json(showing: secret))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Revoke (delete) a key; every replica refuses it within seconds.") }
        @OptionGroup var database: StateDatabaseOptions
        @Argument(help: "The key's name.") var name: String
        func run() async throws {
            try await database.withDatabase(Program.registry()) { db in
                try await ManagedKeyStore(database: db).deleteKey(named: name)
                printJSON(["name": JSON(name), "deleted": true])
            }
        }
    }
}

struct SpendCommand<Program: GatewayProgram>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        commandName: "spend", abstract: "Spend totals from the ledger in the manifest's database.") }

    @OptionGroup var database: StateDatabaseOptions
    @Option(help: "key, team or model.") var groupBy: String?
    @Option(help: "ISO 8601 start (inclusive).") var from: String?
    @Option(help: "ISO 8601 end (exclusive).") var to: String?

    func run() async throws {
        var grouping: SpendLedger.Grouping?
        if let groupBy {
            guard let parsed = SpendLedger.Grouping(rawValue: groupBy) else { throw ValidationError("--group-by: expected key, team or model") }
            grouping = parsed
        }
        func time(_ text: String?, _ option: String) throws -> Int64? {
            guard let text else { return nil }
            guard let ms = ISO8601.milliseconds(text) else { throw ValidationError("\(option): expected an ISO 8601 time or date") }
            return ms
        }
        let fromMs = try time(from, "--from"), toMs = try time(to, "--to")
        try await database.withDatabase(Program.registry()) { db in
            let totals = try await SpendLedger(database: db).totals(groupedBy: grouping, fromMs: fromMs, toMs: toMs)
            if grouping == nil {
                printJSON(["total": (totals.first ?? .zero).json(groupedBy: nil)])
            } else {
                printJSON(["data": JSON(array: totals.map { $0.json(groupedBy: grouping) })])
            }
        }
    }
}
