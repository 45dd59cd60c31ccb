import NIOConcurrencyHelpers

/// How one plugin tells others what happened outside any request: the router that a circuit
/// opened, the cache that it evicted answers. A plugin sends a value of its own type; the plugins
/// of the same manifest that listen for that type hear it, and with nobody listening a send costs
/// a lookup. So no plugin reaches into another's state, and a manifest without `metrics` carries
/// no metrics. What concerns one request travels in its `RequestFacts` instead.
public final class PluginSignals: Sendable {
    private let listeners = NIOLockedValueBox<[ObjectIdentifier: [@Sendable (any Sendable) -> Void]]>([:])

    public init() {}

    /// Calls `handler` with every `Signal` sent from now on (register while the plugin is built).
    public func listen<Signal: Sendable>(for type: Signal.Type, _ handler: @escaping @Sendable (Signal) -> Void) {
        listeners.withLockedValue { $0[ObjectIdentifier(type), default: []].append { signal in (signal as? Signal).map(handler) } }
    }

    public func send<Signal: Sendable>(_ signal: Signal) {
        let handlers = listeners.withLockedValue { $0[ObjectIdentifier(Signal.self)] } ?? []
        for handler in handlers { handler(signal) }
    }
}
