/// Buckets in Redis, shared by every replica. Each reserve or adjust is one Lua script, so it is
/// atomic across replicas, and it reads the clock from Redis (`TIME`), so replicas' clocks need
/// not agree.
final class RedisBucketStore: BucketStore {
    let redis: RedisClient

    init(redis: RedisClient) { self.redis = redis }

    /// ARGV: mode ("reserve" or "adjust"), then per bucket: capacity, refill per millisecond, cost.
    /// A bucket is a hash {t: tokens, ts: milliseconds}; it expires once it would be full anyway.
    static let script = """
        local now_parts = redis.call('TIME')
        local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
        local mode = ARGV[1]
        local tokens, caps, rates, costs = {}, {}, {}, {}
        local wait = 0
        for i = 1, #KEYS do
          caps[i] = tonumber(ARGV[i * 3 - 1]); rates[i] = tonumber(ARGV[i * 3]); costs[i] = tonumber(ARGV[i * 3 + 1])
          local saved = redis.call('HMGET', KEYS[i], 't', 'ts')
          local t, ts = tonumber(saved[1]), tonumber(saved[2])
          if t == nil then t = caps[i]; ts = now end
          t = math.min(caps[i], t + math.max(0, now - ts) * rates[i])
          tokens[i] = t
          if mode == 'reserve' and t < costs[i] then wait = math.max(wait, (costs[i] - t) / rates[i]) end
        end
        local allowed = wait == 0
        local reply = { allowed and 1 or 0, tostring(wait) }
        for i = 1, #KEYS do
          if mode == 'adjust' then tokens[i] = math.min(caps[i], tokens[i] + costs[i])
          elseif allowed then tokens[i] = tokens[i] - costs[i] end
          redis.call('HSET', KEYS[i], 't', tostring(tokens[i]), 'ts', tostring(now))
          redis.call('PEXPIRE', KEYS[i], math.ceil((caps[i] - math.min(tokens[i], caps[i])) / rates[i]) + 1000)
          reply[#reply + 1] = tostring(tokens[i])
        end
        return reply
        """

    func reserve(_ buckets: [Bucket], costs: [Double]) async throws -> Reservation {
        let reply = try await run("reserve", buckets, costs)
        guard case .array(let parts) = reply, parts.count == buckets.count + 2,
              let wait = parts[1].string.flatMap(Double.init) else {
            throw RedisError(message: "unexpected reply from the rate-limit script")
        }
        let remaining = parts.dropFirst(2).map { $0.string.flatMap(Double.init) ?? 0 }
        return Reservation(allowed: parts[0] == .integer(1), remaining: Array(remaining), retryAfter: wait / 1000)
    }

    func adjust(_ buckets: [Bucket], deltas: [Double]) async throws {
        _ = try await run("adjust", buckets, deltas)
    }

    func shutdown() async { await redis.shutdown() }

    private func run(_ mode: String, _ buckets: [Bucket], _ amounts: [Double]) async throws -> RedisReply {
        var arguments = [mode]
        for (bucket, amount) in zip(buckets, amounts) {
            arguments += [String(bucket.capacity), String(bucket.refillPerSecond / 1000), String(amount)]
        }
        return try await redis.evaluate(Self.script, keys: buckets.map(\.key), arguments: arguments)
    }
}
