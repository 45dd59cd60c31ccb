import Foundation
import Kernel
import NIOConcurrencyHelpers

/// Each provider's last probe and the targets whose circuit breaker is open, as the health
/// monitor (`ProviderProbed`) and the router (`CircuitChanged`) report them. One per
/// generation: a reload brings a new router, whose circuits start closed.
final class ProviderBoard: Sendable {
    struct Entry: Sendable {
        var probe = "unknown"
        var detail = "not probed yet"
        var checkedAt: Date?
        var latencyMilliseconds: Double?
        var openTargets: Set<String> = []

        /// `ok`, `unknown` (not probed yet, nothing failing) or `down`: the row's colour.
        var state: String {
            if !openTargets.isEmpty || probe == "down" || probe == "not configured" { return "down" }
            return probe == "up" ? "ok" : "unknown"
        }
    }

    private let entries: NIOLockedValueBox<[String: Entry]>
    private let order: [String]

    /// `providers` in manifest order; `unavailable`: those left out for a missing secret, with the reason.
    init(providers: [String], unavailable: [String: String]) {
        var entries: [String: Entry] = [:]
        for name in providers { entries[name] = Entry() }
        for (name, reason) in unavailable { entries[name] = Entry(probe: "not configured", detail: reason) }
        order = providers
        self.entries = NIOLockedValueBox(entries)
    }

    func probed(_ signal: ProviderProbed) {
        entries.withLockedValue {
            $0[signal.provider, default: Entry()].probe = signal.isUp ? "up" : "down"
            $0[signal.provider, default: Entry()].detail = signal.detail
            $0[signal.provider, default: Entry()].checkedAt = signal.checkedAt
            $0[signal.provider, default: Entry()].latencyMilliseconds = signal.latencyMilliseconds
        }
    }

    func circuit(provider: String, model: String, isOpen: Bool) {
        entries.withLockedValue {
            if isOpen { $0[provider, default: Entry()].openTargets.insert(model) } else { $0[provider]?.openTargets.remove(model) }
        }
    }

    /// Every provider in manifest order.
    var json: JSON {
        let snapshot = entries.withLockedValue { $0 }
        let names = order + snapshot.keys.filter { !order.contains($0) }.sorted()
        return JSON(array: names.compactMap { name in
            guard let entry = snapshot[name] else { return nil }
            var probe: JSON = ["status": JSON(entry.probe), "detail": JSON(entry.detail)]
            probe["checked_at"] = entry.checkedAt.map { JSON(StatusReport.timestamp($0)) } ?? .null
            probe["latency_ms"] = entry.latencyMilliseconds.map { JSON(($0 * 10).rounded() / 10) } ?? .null
            return JSON(object: [
                ("name", JSON(name)), ("state", JSON(entry.state)), ("probe", probe),
                ("breaker", JSON(entry.openTargets.isEmpty ? "closed" : "open")),
                ("open_targets", JSON(array: entry.openTargets.sorted().map { JSON($0) })),
            ])
        })
    }
}
