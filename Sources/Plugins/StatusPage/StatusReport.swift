import Foundation
import Kernel

/// `/status.json`: the ring's buckets turned into figures per public model over the last 5, 15
/// and 60 minutes, a series of 10-second points for the charts, the top keys, and what the page
/// shows besides (providers, open streams, the manifest, recent errors).
enum StatusReport {
    /// The windows, by name, in buckets.
    static let windows: [(name: String, buckets: Int)] = [("5m", 30), ("15m", 90), ("60m", 360)]
    static let topKeys = 10

    /// The figures of a model over one window or one bucket; nil (JSON null) where nothing was measured.
    struct Figures {
        var requests: Int
        var errors: Int
        var requestRate: Double
        var errorRate: Double?
        var p50Milliseconds: Double?
        var p99Milliseconds: Double?
        var timeToFirstTokenP50Milliseconds: Double?
        var tokensPerMinute: Double
        var inputTokens: Int
        var outputTokens: Int
        var spend: Double

        init(_ figures: ModelFigures, seconds: Double) {
            requests = figures.requests
            errors = figures.errors
            requestRate = StatusReport.rounded(Double(figures.requests) / seconds, 4)
            errorRate = figures.requests > 0 ? StatusReport.rounded(Double(figures.errors) / Double(figures.requests), 4) : nil
            p50Milliseconds = figures.latency.quantile(0.5).map { StatusReport.rounded($0 * 1000, 1) }
            p99Milliseconds = figures.latency.quantile(0.99).map { StatusReport.rounded($0 * 1000, 1) }
            timeToFirstTokenP50Milliseconds = figures.timeToFirstToken.quantile(0.5).map { StatusReport.rounded($0 * 1000, 1) }
            inputTokens = figures.inputTokens
            outputTokens = figures.outputTokens
            tokensPerMinute = StatusReport.rounded(Double(figures.inputTokens + figures.outputTokens) * 60 / seconds, 2)
            spend = StatusReport.rounded(figures.spend, 8)
        }

        /// The figures the charts draw, by the names the window figures use.
        static let charted = ["request_rate", "error_rate", "p50_ms", "p99_ms", "ttft_p50_ms", "tokens_per_minute", "spend_usd"]

        func value(_ name: String) -> JSON {
            switch name {
            case "request_rate": JSON(requestRate)
            case "error_rate": errorRate.map { JSON($0) } ?? .null
            case "p50_ms": p50Milliseconds.map { JSON($0) } ?? .null
            case "p99_ms": p99Milliseconds.map { JSON($0) } ?? .null
            case "ttft_p50_ms": timeToFirstTokenP50Milliseconds.map { JSON($0) } ?? .null
            case "tokens_per_minute": JSON(tokensPerMinute)
            case "spend_usd": JSON(spend)
            default: .null
            }
        }

        var json: JSON {
            var object = JSON(object: [("requests", JSON(requests)), ("errors", JSON(errors)),
                                       ("input_tokens", JSON(inputTokens)), ("output_tokens", JSON(outputTokens))])
            for name in Self.charted { object[name] = value(name) }
            return object
        }
    }

    /// The figures part of the report: `models` (every public model of the manifest, then any
    /// other with requests in the hour, such as `unknown`), `top_keys` and the series' timing.
    static func figures(buckets: [StatusBucket], models manifestModels: [String]) -> JSON {
        let seconds = Double(StatusRing.bucketSeconds)
        var seen = Set<String>()
        for bucket in buckets { seen.formUnion(bucket.models.keys) }
        let models = manifestModels + seen.subtracting(manifestModels).sorted()

        var modelsJSON: [JSON] = []
        for model in models {
            var windowsJSON = JSON.object()
            for window in windows {
                var total = ModelFigures()
                for bucket in buckets.suffix(window.buckets) { if let figures = bucket.models[model] { total.add(figures) } }
                windowsJSON[window.name] = Figures(total, seconds: Double(window.buckets) * seconds).json
            }
            let points = buckets.map { Figures($0.models[model] ?? ModelFigures(), seconds: seconds) }
            var series = JSON.object()
            for name in Figures.charted { series[name] = JSON(array: points.map { $0.value(name) }) }
            modelsJSON.append(JSON(object: [("name", JSON(model)), ("windows", windowsJSON), ("series", series)]))
        }

        var keys: [String: KeyFigures] = [:]
        for bucket in buckets {
            for (name, figures) in bucket.keys {
                keys[name, default: KeyFigures()].requests += figures.requests
                keys[name, default: KeyFigures()].spend += figures.spend
            }
        }
        func top(_ sorted: [(key: String, value: KeyFigures)]) -> JSON {
            JSON(array: sorted.prefix(topKeys).map {
                JSON(object: [("name", JSON($0.key)), ("requests", JSON($0.value.requests)), ("spend_usd", JSON(rounded($0.value.spend, 8)))])
            })
        }
        let byRequests = keys.sorted { ($0.value.requests, $1.key) > ($1.value.requests, $0.key) }
        let bySpend = keys.filter { $0.value.spend > 0 }.sorted { ($0.value.spend, $1.key) > ($1.value.spend, $0.key) }

        return JSON(object: [
            ("bucket_seconds", JSON(StatusRing.bucketSeconds)),
            ("series_start", JSON((buckets.first?.number ?? 0) * StatusRing.bucketSeconds)),
            ("windows", JSON(array: windows.map { JSON(object: [("name", JSON($0.name)), ("buckets", JSON($0.buckets))]) })),
            ("models", JSON(array: modelsJSON)),
            ("top_keys", JSON(object: [("window", "60m"), ("by_requests", top(byRequests)), ("by_spend", top(bySpend))])),
        ])
    }

    static func rounded(_ value: Double, _ places: Int) -> Double {
        guard value.isFinite else { return 0 }
        let scale = pow(10, Double(places))
        return (value * scale).rounded() / scale
    }

    static func timestamp(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }
}
