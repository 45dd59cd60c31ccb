import Foundation
import NIOConcurrencyHelpers
import ServiceLifecycle
import Tracing

/// swift-otel's tracer and its exporting service, owned together so that they end off the event
/// loops: the OTLP/HTTP exporter shuts its AsyncHTTPClient down synchronously in `deinit`, which
/// AsyncHTTPClient refuses (it stops the process) on an event loop, and Sluice's tasks run there.
/// Everything that needs the tracer reaches it through this object, so this is its last owner.
final class TracingBackend: Sendable {
    let tracer: any Tracer
    private let exporter: ServiceGroup
    private let running = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(tracer: any Tracer, exporter: ServiceGroup) {
        self.tracer = tracer
        self.exporter = exporter
    }

    func start() {
        let exporter = exporter
        running.withLockedValue { $0 = Task { try? await exporter.run() } }
    }

    /// Flushes what is queued and stops exporting; returns once the exporter has stopped.
    func shutdown() async {
        await exporter.triggerGracefulShutdown()
        await running.withLockedValue { $0 }?.value
    }

    deinit {
        let parts: (any Tracer, ServiceGroup) = (tracer, exporter)
        Thread.detachNewThread { withExtendedLifetime(parts) {} }
    }
}
