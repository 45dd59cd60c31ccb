import Kernel
import Prometheus

/// The gateway's Prometheus metrics, in one registry for the whole process (counts survive a
/// reload). Names follow the OpenTelemetry GenAI semantic conventions where they exist
/// (`gen_ai_*`); the rest are `sluice_*`. docs/METRICS.md lists them all.
final class GatewayMetrics: Sendable {
    static let shared = GatewayMetrics()

    let registry = PrometheusCollectorRegistry()

    static let secondsBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
    static let overheadBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1]
    static let tokenBuckets: [Double] = [1, 4, 16, 64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304]

    private func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: metric, unitName: unit, helpText: help)
    }

    func requests(model: String, provider: String, status: UInt, key: String, frontDoor: String) -> Counter {
        registry.makeCounter(descriptor: name("sluice_requests", "total", "Requests answered, by public model, provider, status, key and front door"),
                             labels: [("model", model), ("provider", provider), ("status", String(status)), ("key_name", key), ("front_door", frontDoor)])
    }

    func duration(model: String, provider: String, status: UInt) -> ValueHistogram {
        registry.makeValueHistogram(descriptor: name("gen_ai_server_request_duration", "seconds", "Time from request to the end of the answer"),
                                    labels: [("gen_ai_request_model", model), ("gen_ai_provider_name", provider), ("status", String(status))],
                                    buckets: Self.secondsBuckets)
    }

    func timeToFirstToken(model: String, provider: String) -> ValueHistogram {
        registry.makeValueHistogram(descriptor: name("gen_ai_server_time_to_first_token", "seconds", "Time from request to the first event of a stream"),
                                    labels: [("gen_ai_request_model", model), ("gen_ai_provider_name", provider)], buckets: Self.secondsBuckets)
    }

    func upstreamDuration(provider: String) -> ValueHistogram {
        registry.makeValueHistogram(descriptor: name("sluice_upstream_duration", "seconds", "Time spent waiting on the provider, all attempts"),
                                    labels: [("gen_ai_provider_name", provider)], buckets: Self.secondsBuckets)
    }

    var overhead: ValueHistogram {
        registry.makeValueHistogram(descriptor: name("sluice_gateway_overhead", "seconds", "Request time not spent waiting on a provider"),
                                    labels: [], buckets: Self.overheadBuckets)
    }

    func tokenUsage(type: String, model: String, provider: String) -> ValueHistogram {
        registry.makeValueHistogram(descriptor: name("gen_ai_client_token_usage", "", "Tokens per answer, by type (input or output)"),
                                    labels: [("gen_ai_token_type", type), ("gen_ai_request_model", model), ("gen_ai_provider_name", provider)],
                                    buckets: Self.tokenBuckets)
    }

    func tokens(direction: String, model: String, provider: String, key: String) -> Counter {
        registry.makeCounter(descriptor: name("sluice_tokens", "total", "Tokens used, by direction (input, output, cached_input)"),
                             labels: [("direction", direction), ("model", model), ("provider", provider), ("key_name", key)])
    }

    func cost(model: String, provider: String, key: String) -> Counter {
        registry.makeCounter(descriptor: name("sluice_cost_usd", "total", "Cost in US dollars from the manifest's prices"),
                             labels: [("model", model), ("provider", provider), ("key_name", key)])
    }

    var inFlight: Gauge {
        registry.makeGauge(descriptor: name("sluice_requests_in_flight", "", "Requests being answered (streams included)"), labels: [])
    }

    var openStreams: Gauge {
        registry.makeGauge(descriptor: name("sluice_streams_open", "", "Streams being sent to clients"), labels: [])
    }

    func retries(model: String) -> Counter {
        registry.makeCounter(descriptor: name("sluice_retries", "total", "Upstream attempts beyond the first"), labels: [("model", model)])
    }

    func fallbacks(model: String) -> Counter {
        registry.makeCounter(descriptor: name("sluice_fallbacks", "total", "Answers that came from a fallback model"), labels: [("model", model)])
    }

    func refused(reason: String, key: String) -> Counter {
        registry.makeCounter(descriptor: name("sluice_refused_requests", "total",
                                              "Requests refused before reaching a provider, by reason (rate_limited, invalid, unauthorized, forbidden)"),
                             labels: [("reason", reason), ("key_name", key)])
    }

    func cacheRequests(result: String) -> Counter {
        registry.makeCounter(descriptor: name("sluice_cache_requests", "total", "Cacheable requests by result (hit, miss, bypass)"),
                             labels: [("result", result)])
    }

    var cacheEvictions: Counter {
        registry.makeCounter(descriptor: name("sluice_cache_evictions", "total", "Answers dropped from the in-memory cache to make room"), labels: [])
    }

    var cacheBytes: Gauge {
        registry.makeGauge(descriptor: name("sluice_cache_bytes", "", "Size of the in-memory cache"), labels: [])
    }

    /// 1 while a target's circuit is open (its requests skipped), 0 once closed again.
    func circuitOpen(provider: String, model: String) -> Gauge {
        registry.makeGauge(descriptor: name("sluice_circuit_open", "", "1 while a provider target's circuit breaker is open or half-open"),
                           labels: [("provider", provider), ("upstream_model", model)])
    }
}
