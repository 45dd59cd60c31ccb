import Atomics
import Prometheus

/// The series an answered request records, for one set of its labels (model, provider, status,
/// key, front door): a request finds them all with one lookup instead of one per series, and
/// each is made the first time it is used, so that a label set shows only what happened (no
/// token series at zero for answers without usage). The registry hands every bundle that shares
/// a series' labels the same handle.
final class RequestSeries: Sendable {
    private let metrics: GatewayMetrics
    private let model: String, provider: String, status: UInt, key: String, frontDoor: String

    private let requestsMade = ManagedAtomicLazyReference<Counter>()
    private let durationMade = ManagedAtomicLazyReference<ValueHistogram>()
    private let timeToFirstTokenMade = ManagedAtomicLazyReference<ValueHistogram>()
    private let upstreamDurationMade = ManagedAtomicLazyReference<ValueHistogram>()
    private let inputUsageMade = ManagedAtomicLazyReference<ValueHistogram>()
    private let outputUsageMade = ManagedAtomicLazyReference<ValueHistogram>()
    private let inputTokensMade = ManagedAtomicLazyReference<Counter>()
    private let outputTokensMade = ManagedAtomicLazyReference<Counter>()
    private let cachedInputTokensMade = ManagedAtomicLazyReference<Counter>()
    private let costMade = ManagedAtomicLazyReference<Counter>()
    private let retriesMade = ManagedAtomicLazyReference<Counter>()
    private let fallbacksMade = ManagedAtomicLazyReference<Counter>()

    init(metrics: GatewayMetrics, model: String, provider: String, status: UInt, key: String, frontDoor: String) {
        self.metrics = metrics
        self.model = model
        self.provider = provider
        self.status = status
        self.key = key
        self.frontDoor = frontDoor
    }

    var requests: Counter {
        requestsMade.made { metrics.requests(model: model, provider: provider, status: status, key: key, frontDoor: frontDoor) }
    }
    var duration: ValueHistogram { durationMade.made { metrics.duration(model: model, provider: provider, status: status) } }
    var timeToFirstToken: ValueHistogram { timeToFirstTokenMade.made { metrics.timeToFirstToken(model: model, provider: provider) } }
    var upstreamDuration: ValueHistogram { upstreamDurationMade.made { metrics.upstreamDuration(provider: provider) } }
    var inputTokenUsage: ValueHistogram { inputUsageMade.made { metrics.tokenUsage(type: "input", model: model, provider: provider) } }
    var outputTokenUsage: ValueHistogram { outputUsageMade.made { metrics.tokenUsage(type: "output", model: model, provider: provider) } }
    var inputTokens: Counter { inputTokensMade.made { metrics.tokens(direction: "input", model: model, provider: provider, key: key) } }
    var outputTokens: Counter { outputTokensMade.made { metrics.tokens(direction: "output", model: model, provider: provider, key: key) } }
    var cachedInputTokens: Counter {
        cachedInputTokensMade.made { metrics.tokens(direction: "cached_input", model: model, provider: provider, key: key) }
    }
    var cost: Counter { costMade.made { metrics.cost(model: model, provider: provider, key: key) } }
    var retries: Counter { retriesMade.made { metrics.retries(model: model) } }
    var fallbacks: Counter { fallbacksMade.made { metrics.fallbacks(model: model) } }
}
