import Foundation
import Kernel
import NIOConcurrencyHelpers
import ServiceLifecycle
import Tracing

/// swift-otel's tracer and its exporting service, owned together so that they end off the event
/// loops: the OTLP/HTTP exporter shuts its AsyncHTTPClient down synchronously in `deinit`, which
/// AsyncHTTPClient refuses (it stops the process) on an event loop, and Sluice's tasks run there.
/// Everything that needs the tracer reaches it through this object, so this is its last owner.
final class TracingBackend: Sendable {
    private final class Parts: Sendable {
        let tracer: any Tracer
        let exporter: ServiceGroup

        init(tracer: any Tracer, exporter: ServiceGroup) {
            self.tracer = tracer
            self.exporter = exporter
        }
    }

    /// Retained by hand: `deinit` gives the one reference to a thread off the event loops, which
    /// is then surely the last owner. (A stored strong reference is released after `deinit`
    /// returns, and so on the event loop whenever that thread happened to let go first.)
    private let parts: Unmanaged<Parts>
    private let background: BackgroundWork
    private let exporting = NIOLockedValueBox<BackgroundJob?>(nil)

    var tracer: any Tracer { parts.takeUnretainedValue().tracer }

    init(tracer: any Tracer, exporter: ServiceGroup, background: BackgroundWork) {
        parts = .passRetained(Parts(tracer: tracer, exporter: exporter))
        self.background = background
    }

    func start() {
        let exporter = parts.takeUnretainedValue().exporter
        // Off the event loops: encoding and sending a batch takes milliseconds.
        let job = background.start(offEventLoops: true) { try? await exporter.run() }
        exporting.withLockedValue { $0 = job }
    }

    /// Flushes what is queued and stops exporting; returns once the exporter has stopped.
    func shutdown() async {
        await parts.takeUnretainedValue().exporter.triggerGracefulShutdown()
        await exporting.withLockedValue { $0 }?.waitUntilEnded()
    }

    deinit {
        let parts = parts
        // On the `sluice-bgwork` thread while the gateway runs; once it has stopped (a host
        // releasing its gateway after `run`), there is no job left to run it, so on a thread of its own.
        if !background.submit(offEventLoops: true, { parts.release() }) {
            Thread.detachNewThread { parts.release() }
        }
    }
}
