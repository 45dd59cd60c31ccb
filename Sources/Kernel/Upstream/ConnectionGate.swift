import NIOCore

/// Keeps the transfers to an HTTP/2 provider on as few connections as the provider allows
/// (docs/ARCHITECTURE.md, "Upstream transports"). It belongs to the curl thread.
///
/// `CURLOPT_PIPEWAIT` makes a transfer wait for a connection that is still being set up instead
/// of opening its own. Before curl 8.0 (Debian 12 ships 7.88), it waits only for a host's first
/// connection. Once that one is full, every transfer that arrives while the next connection is
/// being set up opens one more (curl/curl#10456).
///
/// So only one transfer per `https://` origin is let into curl before its connection is made.
/// The others are held and let in one at a time: each when the one before it has a connection
/// (a reused one at once, a new one after its handshake). Three exceptions:
/// - an origin that answers in HTTP/1.1 is not held at all;
/// - a transfer that ends without a connection lets all held transfers of its origin in, so that
///   an unreachable provider fails them together, not one connect timeout after another;
/// - no transfer is held longer than its own connect timeout.
struct ConnectionGate {
    private var origins: [String: Origin] = [:]

    private struct Origin {
        /// Whether the provider answered in HTTP/2; `nil` until an answer tells.
        var multiplexes: Bool?
        /// The transfer let in whose connection is not made yet.
        var opening: ObjectIdentifier?
        /// Held transfers, oldest first, from `next` on.
        var held: [UpstreamTransfer] = []
        var next = 0

        var isHolding: Bool { next < held.count }

        mutating func takeNext() -> UpstreamTransfer? {
            guard isHolding else { return nil }
            defer {
                next += 1
                if next == held.count {
                    held = []
                    next = 0
                }
            }
            return held[next]
        }

        mutating func takeAll() -> [UpstreamTransfer] {
            defer {
                held = []
                next = 0
            }
            return Array(held[next...])
        }
    }

    /// Whether `transfer` may go into curl now; if not, it is held until `connected`, `ended`,
    /// `learned` or `overdue` (at its connect timeout from `now`) hands it back.
    mutating func admit(_ transfer: UpstreamTransfer, now: NIODeadline = .now()) -> Bool {
        guard let origin = transfer.origin else { return true }
        var state = origins[origin, default: Origin()]
        defer { origins[origin] = state }
        guard state.multiplexes != false else { return true }
        if state.opening != nil || state.isHolding {
            transfer.heldUntil = now + TimeAmount(transfer.connectTimeout)
            state.held.append(transfer)
            return false
        }
        state.opening = ObjectIdentifier(transfer)
        return true
    }

    /// `transfer` has a connection: the next held transfer of its origin, to go in now.
    mutating func connected(_ transfer: UpstreamTransfer) -> UpstreamTransfer? {
        guard let origin = transfer.origin, var state = origins[origin], state.opening == ObjectIdentifier(transfer) else { return nil }
        defer { origins[origin] = state }
        state.opening = nil
        guard let next = state.takeNext() else { return nil }
        state.opening = ObjectIdentifier(next)
        return next
    }

    /// `transfer` has ended. When it ended before it had a connection, every held transfer of
    /// its origin goes in now; an origin with nothing in flight is forgotten.
    mutating func ended(_ transfer: UpstreamTransfer) -> [UpstreamTransfer] {
        guard let origin = transfer.origin, var state = origins[origin] else { return [] }
        defer { origins[origin] = state.opening == nil && !state.isHolding && state.multiplexes == nil ? nil : state }
        guard state.opening == ObjectIdentifier(transfer) else { return [] }
        state.opening = nil
        return state.takeAll()
    }

    /// An answer from `origin` says whether it multiplexes; when not, its held transfers go in now.
    mutating func learned(_ origin: String, multiplexes: Bool) -> [UpstreamTransfer] {
        var state = origins[origin, default: Origin()]
        guard state.multiplexes != multiplexes else { return [] }
        defer { origins[origin] = state }
        state.multiplexes = multiplexes
        guard !multiplexes else { return [] }
        state.opening = nil
        return state.takeAll()
    }

    /// A held transfer the caller gave up on; false when it is not held.
    mutating func remove(_ transfer: UpstreamTransfer) -> Bool {
        guard let origin = transfer.origin, var state = origins[origin],
              let index = state.held[state.next...].firstIndex(where: { $0 === transfer }) else { return false }
        state.held.remove(at: index)
        origins[origin] = state
        return true
    }

    /// Every held transfer, as the curl thread ends.
    mutating func releaseAll() -> [UpstreamTransfer] {
        defer { origins = [:] }
        return origins.values.flatMap { Array($0.held[$0.next...]) }
    }

    /// Whether any transfer is held (the curl thread then looks at the clock more often).
    var isHolding: Bool { origins.values.contains { $0.isHolding } }

    /// Held transfers that have waited as long as their connect timeout: they go in now.
    mutating func overdue(now: NIODeadline) -> [UpstreamTransfer] {
        var due: [UpstreamTransfer] = []
        for (origin, var state) in origins where state.isHolding {
            while state.isHolding, state.held[state.next].heldUntil <= now, let transfer = state.takeNext() {
                due.append(transfer)
            }
            origins[origin] = state
        }
        return due
    }
}
