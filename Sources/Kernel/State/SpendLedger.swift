/// The spend ledger: one row per finished request, written in batches by the `spend-ledger`
/// plugin, read by `GET /admin/spend`, `sluice spend` and the `budget` plugin (which rebuilds
/// its counters from it). Costs are stored as whole nano-dollars, so sums are exact.
public struct SpendLedger: Sendable {
    public let database: any StateDatabase

    public init(database: any StateDatabase) { self.database = database }

    /// One finished request.
    public struct Record: Sendable, Equatable {
        public var atMs: Int64
        public var requestID: String
        public var keyName: String?
        public var team: String?
        public var model: String
        public var provider: String?
        public var upstreamModel: String?
        public var inputTokens: Int
        public var outputTokens: Int
        public var cachedInputTokens: Int
        public var costNanoUSD: Int64
        public var status: Int

        public init(atMs: Int64, requestID: String, keyName: String?, team: String?, model: String, provider: String?, upstreamModel: String?,
                    inputTokens: Int, outputTokens: Int, cachedInputTokens: Int, costNanoUSD: Int64, status: Int) {
            self.atMs = atMs
            self.requestID = requestID
            self.keyName = keyName
            self.team = team
            self.model = model
            self.provider = provider
            self.upstreamModel = upstreamModel
            self.inputTokens = inputTokens
            self.outputTokens = outputTokens
            self.cachedInputTokens = cachedInputTokens
            self.costNanoUSD = costNanoUSD
            self.status = status
        }
    }

    /// US dollars as the ledger and budgets count them: whole nano-dollars.
    public static func nanoUSD(_ usd: Double) -> Int64 {
        guard usd.isFinite, usd > 0 else { return 0 }
        return Int64(min(usd * 1e9, 9e18).rounded())
    }

    /// Rows per INSERT statement (12 parameters each, well under both databases' limits).
    static let rowsPerStatement = 200

    /// Writes `records` in one transaction: all or none.
    public func append(_ records: [Record]) async throws {
        guard !records.isEmpty else { return }
        try await database.transaction { session in
            var start = 0
            while start < records.count {
                let chunk = records[start..<min(records.count, start + Self.rowsPerStatement)]
                let placeholders = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
                var parameters: [DatabaseValue] = []
                parameters.reserveCapacity(chunk.count * 12)
                for record in chunk {
                    parameters += [.integer(record.atMs), .text(record.requestID), DatabaseValue(record.keyName), DatabaseValue(record.team),
                                   .text(record.model), DatabaseValue(record.provider), DatabaseValue(record.upstreamModel),
                                   DatabaseValue(record.inputTokens), DatabaseValue(record.outputTokens), DatabaseValue(record.cachedInputTokens),
                                   .integer(record.costNanoUSD), DatabaseValue(record.status)]
                }
                try await session.query("""
                    INSERT INTO sluice_spend_ledger (at_ms, request_id, key_name, team, model, provider, upstream_model,
                      input_tokens, output_tokens, cached_input_tokens, cost_nano_usd, status) VALUES \(placeholders)
                    """, parameters)
                start += chunk.count
            }
        }
    }

    public enum Grouping: String, Sendable, CaseIterable {
        case key, team, model
        var column: String {
            switch self {
            case .key: "key_name"
            case .team: "team"
            case .model: "model"
            }
        }
    }

    /// One group's totals.
    public struct Total: Sendable, Equatable {
        public var group: String?
        public var requests: Int
        public var inputTokens: Int
        public var outputTokens: Int
        public var cachedInputTokens: Int
        public var costNanoUSD: Int64
        public var costUSD: Double { Double(costNanoUSD) / 1e9 }

        /// Nothing spent: the total of an empty ledger.
        public static let zero = Total(group: nil, requests: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costNanoUSD: 0)

        public func json(groupedBy grouping: Grouping?) -> JSON {
            var object: [(String, JSON)] = []
            if let grouping { object.append((grouping.rawValue, group.map { JSON($0) } ?? .null)) }
            object += [("requests", JSON(requests)), ("input_tokens", JSON(inputTokens)), ("output_tokens", JSON(outputTokens)),
                       ("cached_input_tokens", JSON(cachedInputTokens)), ("cost_usd", JSON(costUSD)), ("cost_nano_usd", JSON(Int(costNanoUSD)))]
            return JSON(object: object)
        }
    }

    /// Totals in `[fromMs, toMs)`, by group (none: one total), largest cost first.
    public func totals(groupedBy grouping: Grouping?, fromMs: Int64?, toMs: Int64?) async throws -> [Total] {
        var conditions: [String] = [], parameters: [DatabaseValue] = []
        if let fromMs { conditions.append("at_ms >= ?"); parameters.append(.integer(fromMs)) }
        if let toMs { conditions.append("at_ms < ?"); parameters.append(.integer(toMs)) }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let group = grouping.map { "\($0.column) AS grp, " } ?? ""
        let rows = try await database.query("""
            SELECT \(group)CAST(COUNT(*) AS BIGINT) AS requests, CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
              CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, CAST(COALESCE(SUM(cached_input_tokens), 0) AS BIGINT) AS cached,
              CAST(COALESCE(SUM(cost_nano_usd), 0) AS BIGINT) AS cost
            FROM sluice_spend_ledger\(filter)\(grouping.map { " GROUP BY \($0.column)" } ?? "") ORDER BY cost DESC
            """, parameters)
        return rows.map { row in
            Total(group: grouping == nil ? nil : row["grp"].string, requests: row["requests"].int ?? 0, inputTokens: row["input_tokens"].int ?? 0,
                  outputTokens: row["output_tokens"].int ?? 0, cachedInputTokens: row["cached"].int ?? 0,
                  costNanoUSD: Int64(row["cost"].int ?? 0))
        }
    }

    /// What one key, team or model (or, for `nil`, everything) spent since `fromMs`: where a
    /// budget's counter starts when it has to be rebuilt.
    public func spent(by grouping: Grouping?, _ name: String?, sinceMs fromMs: Int64) async throws -> Int64 {
        var sql = "SELECT CAST(COALESCE(SUM(cost_nano_usd), 0) AS BIGINT) AS cost FROM sluice_spend_ledger WHERE at_ms >= ?"
        var parameters: [DatabaseValue] = [.integer(fromMs)]
        if let grouping {
            sql += " AND \(grouping.column) = ?"
            parameters.append(DatabaseValue(name))
        }
        return Int64(try await database.query(sql, parameters).first?["cost"].int ?? 0)
    }
}
