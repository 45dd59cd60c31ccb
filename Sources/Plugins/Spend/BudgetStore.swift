/// Where budget counters (nano-dollars spent in the current period) live: in this process, or
/// in Redis for replicas to share. A counter that does not exist yet starts from `seed`, what
/// the spend ledger says was spent in the period so far, so a restart (or an emptied Redis)
/// does not forget what was spent.
protocol BudgetStore: Sendable {
    /// Adds `amount` to every counter if each stays within its limit; otherwise adds nothing.
    func reserve(_ counters: [BudgetCounter], amount: Int64) async throws -> BudgetReservation
    /// Adds `delta` (negative gives back) to the counters that exist, whatever their limits.
    func adjust(_ counters: [BudgetCounter], delta: Int64) async throws
    func shutdown() async
}

struct BudgetCounter: Sendable {
    /// Unique per scope and period (`key:ci:2025-06`).
    var name: String
    var limitNano: Int64
    /// Seconds the counter must outlive its period's end.
    var ttlSeconds: Int
    /// What was spent in this period before the counter existed.
    var seed: @Sendable () async throws -> Int64
}

struct BudgetReservation: Sendable {
    var allowed: Bool
    /// Each counter after the reservation (or, refused, as it stands).
    var spent: [Int64]
    /// The first counter that could not pay, when refused.
    var refusedBy: Int?
}
