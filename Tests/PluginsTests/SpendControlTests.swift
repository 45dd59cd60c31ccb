import Foundation
import Kernel
import KernelTesting
import NIOHTTP1
import Plugins
import Testing

/// Managed keys, the admin API, budgets and the spend ledger in-process, on SQLite in a temp dir.
/// The scripted provider answers "one two three" (3 output tokens) with 1 input token; at $1000/M
/// in and $2000/M out a request costs $0.007.
@Suite struct SpendControlTests {
    static let adminKey = "admin-test-key"

    static func gateway(database: String? = temporaryDatabase(), pipeline: String, price: Bool = true) async throws -> TestGateway {
        var registry = Builtins.registry()
        registry.register(ScriptedProvider.self)
        let priceJSON = price ? #", "price": {"input_per_million": 1000, "output_per_million": 2000}"# : ""
        let databaseJSON = database.map { "\"database\": {\"url\": \"\($0)\"}," } ?? ""
        return try await TestGateway(manifest: """
            {\(databaseJSON)
             "providers": {"p": {"plugin": "scripted", "config": {"reply": "one two three"}}},
             "models": {"m": {"targets": [{"provider": "p", "model": "up"}]\(priceJSON)}, "other": {"targets": [{"provider": "p", "model": "up2"}]}},
             "pipeline": \(pipeline)}
            """, registry: registry)
    }

    static func temporaryDatabase() -> String {
        "sqlite:" + TestFolder.make("spend") + "/state.db"
    }

    /// The budget reserves 100 output tokens ($0.2) for a request without `max_tokens`: the
    /// default (4096, $8.19 at this price) would exceed the $1 cap, and every request be refused.
    static let managedPipeline = """
        [{"plugin": "api-key-auth", "config": {"managed": true, "keys": [{"name": "static", "key": "static-key"}]}},
         {"plugin": "spend-ledger", "config": {"flush_interval_s": 0.05}},
         {"plugin": "budget", "config": {"limits": [{"model": "m", "usd": 1}], "default_max_output_tokens": 100}},
         {"plugin": "admin-api", "config": {"admin_keys": [{"name": "ops", "key": "\(adminKey)"}]}},
         {"plugin": "router", "config": {"retries": 0}}]
        """

    static func bearer(_ key: String) -> HTTPHeaders { ["authorization": "Bearer \(key)"] }

    static func admin(_ gateway: TestGateway, _ method: HTTPMethod, _ path: String, _ body: JSON? = nil, key: String? = adminKey) async throws -> TestResponse {
        try await gateway.send(method, "/admin" + path, body: body, headers: key.map(bearer) ?? [:])
    }

    /// Waits for the managed-key snapshot to catch up with the database (polled every second).
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<60 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    @Test func aPluginThatNeedsTheDatabaseSaysSoWhenThereIsNone() async throws {
        do {
            _ = try await Self.gateway(database: nil, pipeline: #"[{"plugin": "spend-ledger"}, {"plugin": "router"}]"#)
            Issue.record("built without a database")
        } catch {
            #expect("\(error)".contains("pipeline[0].config"))
            #expect("\(error)".contains("\"database\""))
        }
        do {
            _ = try await Self.gateway(database: nil, pipeline: #"[{"plugin": "api-key-auth", "config": {"managed": true, "keys": []}}, {"plugin": "router"}]"#)
            Issue.record("built without a database")
        } catch {
            #expect("\(error)".contains("pipeline[0].config.managed"))
        }
    }

    @Test func managedKeysThroughTheAdminAPI() async throws {
        let gateway = try await Self.gateway(pipeline: Self.managedPipeline)
        defer { Task { await gateway.shutdown() } }

        #expect(try await Self.admin(gateway, .GET, "/keys", key: nil).status == .unauthorized)
        #expect(try await Self.admin(gateway, .GET, "/keys", key: "static-key").status == .forbidden)
        #expect(try await Self.admin(gateway, .POST, "/teams", ["name": "research", "budget_usd": 5]).status == .created)
        let created = try await Self.admin(gateway, .POST, "/keys", ["name": "ci", "team": "research", "models": ["m"]])
        #expect(created.status == .created)
        let secret = try #require(created.body?["key"]?.string)
        #expect(try await Self.eventually { try await gateway.chat(model: "m", "hi", headers: Self.bearer(secret)).status == .ok })
        #expect(try await gateway.chat(model: "other", "hi", headers: Self.bearer(secret)).status == .forbidden)
        // The admin API learns of new managed keys by its own poll, like every replica does.
        #expect(try await Self.eventually { try await Self.admin(gateway, .GET, "/keys", key: secret).status == .forbidden })

        let listed = try await Self.admin(gateway, .GET, "/keys")
        #expect(listed.body?["data"]?[0]?["name"]?.string == "ci")
        #expect(listed.bodyText?.contains(secret) == false)

        #expect(try await Self.admin(gateway, .DELETE, "/keys/ci").status == .ok)
        #expect(try await Self.eventually { try await gateway.chat(model: "m", "hi", headers: Self.bearer(secret)).status == .unauthorized })
        #expect(try await Self.admin(gateway, .GET, "/keys/ci").status == .notFound)
        #expect(try await Self.admin(gateway, .GET, "/nothing").status == .notFound)
        let document = try await Self.admin(gateway, .GET, "/openapi.json")
        #expect(document.body?["openapi"]?.string == "3.1.0")
        #expect(document.body?["paths"]?["/admin/keys/{name}/rotate"] != nil)
    }

    @Test func aBudgetRefusesOnceSpentAndTheLedgerRecordsEveryRequest() async throws {
        let database = Self.temporaryDatabase()
        let pipeline = """
            [{"plugin": "api-key-auth", "config": {"keys": [{"name": "tester", "key": "k"}]}},
             {"plugin": "spend-ledger", "config": {"flush_interval_s": 0.05}},
             {"plugin": "budget", "config": {"period": "day", "default_max_output_tokens": 3, "limits": [{"key": "*", "usd": 0.03}]}},
             {"plugin": "router", "config": {"retries": 0}}]
            """
        let gateway = try await Self.gateway(database: database, pipeline: pipeline)
        var answered = 0
        var refusal: TestResponse?
        for _ in 0..<20 {
            let response = try await gateway.chat(model: "m", "hi", headers: Self.bearer("k"))
            if response.status == .ok {
                answered += 1
                #expect(response.headers.first(name: "x-sluice-budget-remaining-usd") != nil)
            } else {
                refusal = response
                break
            }
        }
        // $0.007 each, reserving $0.007 (1 prompt token at 2 characters, 3 answer tokens): four fit in $0.03.
        #expect(answered == 4)
        let refused = try #require(refusal)
        #expect(refused.status == .tooManyRequests)
        #expect(refused.body?["error"]?["code"]?.string == "insufficient_quota")
        #expect(refused.body?["error"]?["message"]?.string?.contains("key `tester`") == true)
        #expect(Int(refused.headers.first(name: "retry-after") ?? "") ?? 0 >= 1)
        await gateway.shutdown()  // the drain: the ledger's last batch is written

        // A new gateway on the same database (counters in memory, gone): rebuilt from the ledger.
        let again = try await Self.gateway(database: database, pipeline: pipeline)
        #expect(try await again.chat(model: "m", "hi", headers: Self.bearer("k")).status == .tooManyRequests)
        let ledger = SpendLedger(database: try #require(again.stateDatabase.current))
        let total = try #require(try await ledger.totals(groupedBy: nil, fromMs: nil, toMs: nil).first)
        #expect(total.requests == 5)
        #expect(total.costNanoUSD == 4 * 7_000_000)
        await again.shutdown()
    }

    @Test func streamsAreSettledAndRecorded() async throws {
        let pipeline = """
            [{"plugin": "api-key-auth", "config": {"keys": [{"name": "tester", "key": "k"}]}},
             {"plugin": "spend-ledger", "config": {"flush_interval_s": 0.05}},
             {"plugin": "budget", "config": {"default_max_output_tokens": 3, "limits": [{"team": "*", "usd": 1}, {"key": "tester", "usd": 1}]}},
             {"plugin": "router", "config": {"retries": 0}}]
            """
        let database = Self.temporaryDatabase()
        let gateway = try await Self.gateway(database: database, pipeline: pipeline)
        let streamed = try await gateway.chat(model: "m", "hi", stream: true, headers: Self.bearer("k"))
        #expect(streamed.text == "one two three")
        let remaining = Double(streamed.headers.first(name: "x-sluice-budget-remaining-usd") ?? "") ?? 0
        #expect(remaining < 1 && remaining > 0.9)
        await gateway.shutdown()
        let reopened = try await StateDatabases.open(try DatabaseSettings.load(["url": JSON(database)], path: "database"), logger: .init(label: "test"),
                                                     background: BackgroundWork())  // SQLite submits no job
        let rows = try await reopened.query("SELECT key_name, output_tokens, cost_nano_usd, status FROM sluice_spend_ledger")
        #expect(rows.count == 1)
        #expect(rows.first?["key_name"].string == "tester")
        #expect(rows.first?["output_tokens"].int == 3)
        #expect(rows.first?["cost_nano_usd"].int == 7_000_000)
        await reopened.close()
    }
}
