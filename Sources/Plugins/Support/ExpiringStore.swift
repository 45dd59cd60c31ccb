import NIOConcurrencyHelpers

/// Values that expire: cached answers, stored responses. In this process's memory, or in Redis
/// for replicas to share.
protocol ExpiringStore: Sendable {
    func get(_ key: String) async throws -> [UInt8]?
    func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws
    func delete(_ key: String) async throws
    func shutdown() async
}

/// An LRU bounded in bytes, with a time to live per entry.
final class MemoryExpiringStore: ExpiringStore {
    // Touched only under `state`'s lock.
    private final class Node: @unchecked Sendable {
        let key: String
        var value: [UInt8]
        var expiresAt: ContinuousClock.Instant
        var newer: Node?
        weak var older: Node?
        init(key: String, value: [UInt8], expiresAt: ContinuousClock.Instant) {
            self.key = key
            self.value = value
            self.expiresAt = expiresAt
        }
    }

    private struct State {
        var nodes: [String: Node] = [:]
        /// The least recently used node; `newest` is the other end.
        var oldest: Node?
        var newest: Node?
        var bytes = 0
    }

    let maxBytes: Int
    private let state = NIOLockedValueBox(State())
    private let onEviction: @Sendable (Int) -> Void
    private let onSize: @Sendable (Int) -> Void

    init(maxBytes: Int, onEviction: @escaping @Sendable (Int) -> Void = { _ in }, onSize: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.maxBytes = maxBytes
        self.onEviction = onEviction
        self.onSize = onSize
    }

    func get(_ key: String) async throws -> [UInt8]? {
        state.withLockedValue { state in
            guard let node = state.nodes[key] else { return nil }
            guard node.expiresAt > .now else {
                Self.remove(node, from: &state)
                return nil
            }
            Self.unlink(node, from: &state)
            Self.append(node, to: &state)
            return node.value
        }
    }

    func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws {
        guard value.count <= maxBytes else { return }
        let (evicted, size) = state.withLockedValue { state -> (Int, Int) in
            if let old = state.nodes[key] { Self.remove(old, from: &state) }
            let node = Node(key: key, value: value, expiresAt: .now + ttl)
            state.nodes[key] = node
            state.bytes += value.count
            Self.append(node, to: &state)
            var evicted = 0
            while state.bytes > maxBytes, let oldest = state.oldest {
                Self.remove(oldest, from: &state)
                evicted += 1
            }
            return (evicted, state.bytes)
        }
        if evicted > 0 { onEviction(evicted) }
        onSize(size)
    }

    func delete(_ key: String) async throws {
        let size = state.withLockedValue { state -> Int? in
            guard let node = state.nodes[key] else { return nil }
            Self.remove(node, from: &state)
            return state.bytes
        }
        if let size { onSize(size) }
    }

    func shutdown() async {
        state.withLockedValue { $0 = State() }
    }

    private static func remove(_ node: Node, from state: inout State) {
        unlink(node, from: &state)
        state.nodes[node.key] = nil
        state.bytes -= node.value.count
    }

    private static func unlink(_ node: Node, from state: inout State) {
        if let older = node.older { older.newer = node.newer } else { state.oldest = node.newer }
        if let newer = node.newer { newer.older = node.older } else { state.newest = node.older }
        node.older = nil
        node.newer = nil
    }

    private static func append(_ node: Node, to state: inout State) {
        node.older = state.newest
        state.newest?.newer = node
        state.newest = node
        if state.oldest == nil { state.oldest = node }
    }
}

/// Entries in Redis with their time to live (`SET key value PX ms`), shared by replicas.
final class RedisExpiringStore: ExpiringStore {
    let redis: RedisClient

    init(redis: RedisClient) { self.redis = redis }

    func get(_ key: String) async throws -> [UInt8]? {
        try await redis.command(["GET", key]).string.map { Array($0.utf8) }
    }

    func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws {
        let milliseconds = max(1, ttl.inMilliseconds)
        _ = try await redis.command(["SET", key, String(decoding: value, as: UTF8.self), "PX", String(milliseconds)])
    }

    func delete(_ key: String) async throws {
        _ = try await redis.command(["DEL", key])
    }

    func shutdown() async { await redis.shutdown() }
}
