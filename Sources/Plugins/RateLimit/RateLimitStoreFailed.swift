/// The rate-limit store (Redis) failed to answer a reservation: sent on the manifest's
/// `PluginSignals` so that an operator can be alerted before clients notice (`metrics` counts it).
public struct RateLimitStoreFailed: Sendable {
    /// Whether the request was let through (`on_store_error: allow`) or refused with 503.
    public var allowed: Bool
}
