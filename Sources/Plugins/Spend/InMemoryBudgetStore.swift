import NIOConcurrencyHelpers

/// Budget counters in this process's memory: exact for one process; a restart rebuilds them
/// from the ledger.
final class InMemoryBudgetStore: BudgetStore {
    private let counters = NIOLockedValueBox<[String: Int64]>([:])

    func reserve(_ counters: [BudgetCounter], amount: Int64) async throws -> BudgetReservation {
        try await seedMissing(counters)
        return self.counters.withLockedValue { values in
            let spent = counters.map { values[$0.name] ?? 0 }
            if let index = counters.indices.first(where: { spent[$0] + amount > counters[$0].limitNano }) {
                return BudgetReservation(allowed: false, spent: spent, refusedBy: index)
            }
            for counter in counters { values[counter.name, default: 0] += amount }
            return BudgetReservation(allowed: true, spent: spent.map { $0 + amount }, refusedBy: nil)
        }
    }

    func adjust(_ counters: [BudgetCounter], delta: Int64) async throws {
        self.counters.withLockedValue { values in
            for counter in counters where values[counter.name] != nil { values[counter.name]! += delta }
        }
    }

    func shutdown() async {}

    private func seedMissing(_ counters: [BudgetCounter]) async throws {
        for counter in counters where self.counters.withLockedValue({ $0[counter.name] == nil }) {
            let seed = try await counter.seed()
            self.counters.withLockedValue { values in if values[counter.name] == nil { values[counter.name] = seed } }
        }
    }
}
