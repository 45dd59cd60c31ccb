import Foundation
import NIOConcurrencyHelpers

/// Probes every provider of a generation now and then, so that `/ready?verbose=1` shows which
/// providers answer. It only reports: routing still tries a provider whose last probe failed,
/// since a probe can be seconds old.
final class ProviderHealthMonitor: Sendable {
    struct Health: Sendable {
        var status: String
        var detail: String
        var checkedAt: Date?
        var latencyMilliseconds: Double?
    }

    private let providers: [(name: String, provider: any Provider)]
    private let interval: Duration
    private let health: NIOLockedValueBox<[String: Health]>
    private let probing = NIOLockedValueBox<BackgroundJob?>(nil)
    private let signals: PluginSignals

    init(providers: [(name: String, provider: any Provider)], unavailable: [String: String], interval: Duration, signals: PluginSignals) {
        self.providers = providers
        self.interval = interval
        self.signals = signals
        var initial: [String: Health] = [:]
        for (name, _) in providers { initial[name] = Health(status: "unknown", detail: "not probed yet") }
        for (name, reason) in unavailable { initial[name] = Health(status: "not configured", detail: reason) }
        health = NIOLockedValueBox(initial)
    }

    /// Probes now and every `interval` after, as a job of `background`, until `stop`.
    func start(on background: BackgroundWork) {
        guard !providers.isEmpty else { return }
        let job = background.start { [self] in
            while !Task.isCancelled {
                await probeAll()
                try? await Task.sleep(for: interval)
            }
        }
        probing.withLockedValue { $0 = job }
    }

    /// Cancels the probes in flight (a probe's transfer is aborted, not waited for) and returns
    /// once the loop has ended, so that nothing probes a provider being shut down.
    func stop() async {
        await probing.withLockedValue { $0 }?.stop()
    }

    /// Whether the probe loop is running (for tests).
    var isProbing: Bool { probing.withLockedValue { $0 }?.isRunning ?? false }

    /// The latest health of every provider, in manifest order.
    var report: JSON {
        let snapshot = health.withLockedValue { $0 }
        var result = JSON.object()
        for name in snapshot.keys.sorted() {
            guard let entry = snapshot[name] else { continue }
            var item: JSON = ["status": JSON(entry.status), "detail": JSON(entry.detail)]
            if let checkedAt = entry.checkedAt { item["checked_at"] = JSON(checkedAt.formatted(Date.ISO8601FormatStyle())) }
            if let latency = entry.latencyMilliseconds { item["latency_ms"] = JSON((latency * 10).rounded() / 10) }
            result[name] = item
        }
        return result
    }

    private func probeAll() async {
        await withTaskGroup(of: (String, Health)?.self) { group in
            for (name, provider) in providers {
                group.addTask {
                    let started = ContinuousClock.now
                    guard let result = await provider.probe() else { return nil }
                    let milliseconds = (ContinuousClock.now - started).inSeconds * 1000
                    return (name, Health(status: result.isUp ? "up" : "down", detail: result.detail, checkedAt: Date(),
                                         latencyMilliseconds: milliseconds))
                }
            }
            for await case let (name, entry)? in group {
                health.withLockedValue { $0[name] = entry }
                signals.send(ProviderProbed(provider: name, isUp: entry.status == "up", detail: entry.detail, checkedAt: entry.checkedAt ?? Date(),
                                            latencyMilliseconds: entry.latencyMilliseconds ?? 0))
            }
        }
    }
}
