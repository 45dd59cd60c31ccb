import Foundation
import Kernel
import NIOConcurrencyHelpers

/// What the lifecycle test plugins did, in the order they did it, per test (`run` in their config).
enum LifecycleEvents {
    private static let events = NIOLockedValueBox<[String: [String]]>([:])

    static func record(_ run: String, _ event: String) {
        events.withLockedValue { $0[run, default: []].append(event) }
    }

    static func of(_ run: String) -> [String] { events.withLockedValue { $0[run] ?? [] } }

    /// Waits (up to `timeout`) until `run` has recorded `event`.
    static func wait(for event: String, in run: String, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if of(run).contains(event) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

/// The name the system knows the calling thread by (`sluice-bgwork`, an event loop's).
func currentThreadName() -> String {
    (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
}

/// A provider whose probe never answers: it records when it begins and when it is cancelled.
struct HangingProbeProvider: Provider {
    static let name = "hanging-probe"
    struct Settings: PluginSettings {
        @Setting("run", required: true, "the test's name for its events") var run = ""
    }
    let run: String
    init(settings: Settings, context: PluginContext) throws { run = settings.run }
    func send(_ call: ProviderCall) async throws -> GatewayResponse { .json([:]) }

    func probe() async -> ProbeResult? {
        LifecycleEvents.record(run, "probe began")
        do {
            try await Task.sleep(for: .seconds(600))
        } catch {
            LifecycleEvents.record(run, "probe cancelled")
        }
        return ProbeResult(isUp: false, detail: "cancelled")
    }

    func shutdown() async { LifecycleEvents.record(run, "provider shut down") }
}

/// A middleware that, as it shuts down, calls upstream (a closed port: what fails is the
/// connection, not the client) and leaves background work behind, both recorded.
struct ShutdownRecorder: Middleware {
    static let name = "shutdown-recorder"
    struct Settings: PluginSettings {
        @Setting("run", required: true, "the test's name for its events") var run = ""
    }
    let run: String
    let context: PluginContext
    init(settings: Settings, context: PluginContext) throws {
        run = settings.run
        self.context = context
    }
    func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse { try await next(request) }

    func shutdown() async {
        LifecycleEvents.record(run, "middleware shut down")
        let outcome: String
        do {
            _ = try await context.upstream.send(UpstreamRequest(method: .GET, url: "http://127.0.0.1:9/",
                                                                timeouts: UpstreamTimeouts(connect: .seconds(2))))
            outcome = "answered"
        } catch let error as UpstreamError {
            outcome = error == .shutdown ? "client shut down" : "client working"
        } catch {
            outcome = "\(error)"
        }
        LifecycleEvents.record(run, "upstream during shutdown: \(outcome)")
        let run = run
        context.background.submit(offEventLoops: true) {
            try? await Task.sleep(for: .milliseconds(200))
            LifecycleEvents.record(run, "job left by shutdown ended on \(currentThreadName())")
        }
    }
}
