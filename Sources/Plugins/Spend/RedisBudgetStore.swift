import NIOConcurrencyHelpers

/// Budget counters in Redis, shared by every replica: each reserve or adjust is one Lua script,
/// atomic across replicas. A counter this process has not seen yet is sent with its seed (read
/// from the ledger); one it has seen is sent without, and if Redis lost it (a restart, an
/// eviction) the script says so and the process seeds it again.
final class RedisBudgetStore: BudgetStore {
    let redis: RedisClient
    /// Counters known to exist in Redis.
    private let seeded = NIOLockedValueBox<Set<String>>([])

    init(redis: RedisClient) { self.redis = redis }

    /// ARGV: mode, amount, then per counter: limit, seed (-1: none), ttl seconds.
    /// Reply: {status, index, values…}; status 1 allowed, 0 refused (index: by which), -1 missing seeds (indexes follow).
    static let script = """
        local mode, amount = ARGV[1], ARGV[2]
        local values, missing = {}, {}
        for i = 1, #KEYS do
          local value = redis.call('GET', KEYS[i])
          if not value then
            local seed = tonumber(ARGV[i * 3 + 1])
            if seed >= 0 then
              redis.call('SET', KEYS[i], ARGV[i * 3 + 1], 'EX', ARGV[i * 3 + 2])
              value = seed
            elseif mode == 'reserve' then
              missing[#missing + 1] = i
            end
          end
          values[i] = value and tonumber(value) or nil
        end
        if #missing > 0 then
          local reply = { -1, 0 }
          for _, i in ipairs(missing) do reply[#reply + 1] = i end
          return reply
        end
        if mode == 'reserve' then
          for i = 1, #KEYS do
            if values[i] + tonumber(amount) > tonumber(ARGV[i * 3]) then
              local reply = { 0, i }
              for j = 1, #KEYS do reply[#reply + 1] = tostring(values[j]) end
              return reply
            end
          end
        end
        local reply = { 1, 0 }
        for i = 1, #KEYS do
          if values[i] ~= nil then values[i] = redis.call('INCRBY', KEYS[i], amount) end
          reply[#reply + 1] = tostring(values[i] or 0)
        end
        return reply
        """

    func reserve(_ counters: [BudgetCounter], amount: Int64) async throws -> BudgetReservation {
        var reply = try await run("reserve", counters, amount: amount)
        if reply.status == -1 {
            seeded.withLockedValue { known in for index in reply.values { known.remove(counters[Int(index) - 1].name) } }
            reply = try await run("reserve", counters, amount: amount)
        }
        guard reply.status >= 0, reply.values.count == counters.count else { throw RedisError(message: "unexpected reply from the budget script") }
        seeded.withLockedValue { $0.formUnion(counters.map(\.name)) }
        return BudgetReservation(allowed: reply.status == 1, spent: reply.values, refusedBy: reply.status == 0 ? reply.index - 1 : nil)
    }

    func adjust(_ counters: [BudgetCounter], delta: Int64) async throws {
        _ = try await run("adjust", counters, amount: delta, seeding: false)
    }

    func shutdown() async { await redis.shutdown() }

    private func run(_ mode: String, _ counters: [BudgetCounter], amount: Int64, seeding: Bool = true) async throws -> (status: Int, index: Int, values: [Int64]) {
        var arguments = [mode, String(amount)]
        for counter in counters {
            let known = !seeding || seeded.withLockedValue { $0.contains(counter.name) }
            let seed: Int64
            if known { seed = -1 } else { seed = try await counter.seed() }
            arguments += [String(counter.limitNano), String(seed), String(counter.ttlSeconds)]
        }
        let reply = try await redis.evaluate(Self.script, keys: counters.map(\.name), arguments: arguments)
        guard case .array(let parts) = reply, parts.count >= 2, let status = parts[0].string.flatMap(Int.init),
              let index = parts[1].string.flatMap(Int.init) else {
            throw RedisError(message: "unexpected reply from the budget script")
        }
        return (status, index, parts.dropFirst(2).map { $0.string.flatMap { Int64($0) ?? Double($0).map { Int64($0) } } ?? 0 })
    }
}
