import Atomics
import Kernel
import NIOConcurrencyHelpers
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

    /// Handles already made, by metric and label values. On every make call the registry joins the
    /// name, checks it, the help text and each label, and takes its lock; a request records up to a
    /// dozen series, and asking the registry each time cost more than the rest of the plugin.
    private let made = NIOLockedValueBox<[Series: any AnyObject & Sendable]>([:])

    private enum Metric: UInt8 {
        case requests, duration, timeToFirstToken, upstreamDuration, tokenUsage, tokens, cost
        case requestSeries, retries, fallbacks, refused, cacheRequests, cacheEvictions, cacheBytes, circuitOpen, mcpCalls, mcpDuration, rateLimitStoreErrors, guardrailActions, ledgerWriteFailures
    }

    /// A metric and up to five label values, in the order its make call names them.
    private struct Series: Hashable {
        let metric: Metric
        let l0, l1, l2, l3, l4: String
    }

    /// The handle for `metric` with these label values, made by `make` the first time. Two threads
    /// may both make it: the registry hands both the same handle.
    private func handle<Handle: AnyObject & Sendable>(_ metric: Metric, _ l0: String = "", _ l1: String = "", _ l2: String = "",
                                                      _ l3: String = "", _ l4: String = "", make: () -> Handle) -> Handle {
        let series = Series(metric: metric, l0: l0, l1: l1, l2: l2, l3: l3, l4: l4)
        if let known = made.withLockedValue({ $0[series] }) { return unsafeDowncast(known, to: Handle.self) }
        let fresh = make()
        made.withLockedValue { $0[series] = fresh }
        return fresh
    }

    func requests(model: String, provider: String, status: UInt, key: String, frontDoor: String) -> Counter {
        handle(.requests, model, provider, String(decimal: Int(status)), key, frontDoor) {
            registry.makeCounter(descriptor: name("sluice_requests", "total", "Requests answered, by public model, provider, status, key and front door"),
                                 labels: [("model", model), ("provider", provider), ("status", String(decimal: Int(status))), ("key_name", key), ("front_door", frontDoor)])
        }
    }

    func duration(model: String, provider: String, status: UInt) -> ValueHistogram {
        handle(.duration, model, provider, String(decimal: Int(status))) {
            registry.makeValueHistogram(descriptor: name("gen_ai_server_request_duration", "seconds", "Time from request to the end of the answer"),
                                        labels: [("gen_ai_request_model", model), ("gen_ai_provider_name", provider), ("status", String(decimal: Int(status)))],
                                        buckets: Self.secondsBuckets)
        }
    }

    func timeToFirstToken(model: String, provider: String) -> ValueHistogram {
        handle(.timeToFirstToken, model, provider) {
            registry.makeValueHistogram(descriptor: name("gen_ai_server_time_to_first_token", "seconds", "Time from request to the first event of a stream"),
                                        labels: [("gen_ai_request_model", model), ("gen_ai_provider_name", provider)], buckets: Self.secondsBuckets)
        }
    }

    func upstreamDuration(provider: String) -> ValueHistogram {
        handle(.upstreamDuration, provider) {
            registry.makeValueHistogram(descriptor: name("sluice_upstream_duration", "seconds", "Time spent waiting on the provider, all attempts"),
                                        labels: [("gen_ai_provider_name", provider)], buckets: Self.secondsBuckets)
        }
    }

    /// The series one answered request records, found with one lookup (`MetricsPlugin.record`).
    func requestSeries(model: String, provider: String, status: UInt, key: String, frontDoor: String) -> RequestSeries {
        handle(.requestSeries, model, provider, String(decimal: Int(status)), key, frontDoor) {
            RequestSeries(metrics: self, model: model, provider: provider, status: status, key: key, frontDoor: frontDoor)
        }
    }

    // The unlabelled series every request touches: made on first use, then one atomic load each.
    private let overheadMade = ManagedAtomicLazyReference<ValueHistogram>()
    private let inFlightMade = ManagedAtomicLazyReference<Gauge>()
    private let openStreamsMade = ManagedAtomicLazyReference<Gauge>()

    var overhead: ValueHistogram {
        overheadMade.made {
            registry.makeValueHistogram(descriptor: name("sluice_gateway_overhead", "seconds", "Request time not spent waiting on a provider"),
                                        labels: [], buckets: Self.overheadBuckets)
        }
    }

    func tokenUsage(type: String, model: String, provider: String) -> ValueHistogram {
        handle(.tokenUsage, type, model, provider) {
            registry.makeValueHistogram(descriptor: name("gen_ai_client_token_usage", "", "Tokens per answer, by type (input or output)"),
                                        labels: [("gen_ai_token_type", type), ("gen_ai_request_model", model), ("gen_ai_provider_name", provider)],
                                        buckets: Self.tokenBuckets)
        }
    }

    func tokens(direction: String, model: String, provider: String, key: String) -> Counter {
        handle(.tokens, direction, model, provider, key) {
            registry.makeCounter(descriptor: name("sluice_tokens", "total", "Tokens used, by direction (input, output, cached_input)"),
                                 labels: [("direction", direction), ("model", model), ("provider", provider), ("key_name", key)])
        }
    }

    func cost(model: String, provider: String, key: String) -> Counter {
        handle(.cost, model, provider, key) {
            registry.makeCounter(descriptor: name("sluice_cost_usd", "total", "Cost in US dollars from the manifest's prices"),
                                 labels: [("model", model), ("provider", provider), ("key_name", key)])
        }
    }

    var inFlight: Gauge {
        inFlightMade.made {
            registry.makeGauge(descriptor: name("sluice_requests_in_flight", "", "Requests being answered (streams included)"), labels: [])
        }
    }

    var openStreams: Gauge {
        openStreamsMade.made {
            registry.makeGauge(descriptor: name("sluice_streams_open", "", "Streams being sent to clients"), labels: [])
        }
    }

    func retries(model: String) -> Counter {
        handle(.retries, model) {
            registry.makeCounter(descriptor: name("sluice_retries", "total", "Upstream attempts beyond the first"), labels: [("model", model)])
        }
    }

    func fallbacks(model: String) -> Counter {
        handle(.fallbacks, model) {
            registry.makeCounter(descriptor: name("sluice_fallbacks", "total", "Answers that came from a fallback model"), labels: [("model", model)])
        }
    }

    func refused(reason: String, key: String) -> Counter {
        handle(.refused, reason, key) {
            registry.makeCounter(descriptor: name("sluice_refused_requests", "total",
                                                  "Requests refused before reaching a provider, by reason (rate_limited, invalid, unauthorized, forbidden)"),
                                 labels: [("reason", reason), ("key_name", key)])
        }
    }

    func cacheRequests(result: String) -> Counter {
        handle(.cacheRequests, result) {
            registry.makeCounter(descriptor: name("sluice_cache_requests", "total", "Cacheable requests by result (hit, miss, bypass)"),
                                 labels: [("result", result)])
        }
    }

    /// What guardrails did, by guardrail, rule (a detector, a category, a rule's kind), action and stage.
    func guardrailActions(guardrail: String, rule: String, action: String, stage: String) -> Counter {
        handle(.guardrailActions, guardrail, rule, action, stage) {
            registry.makeCounter(descriptor: name("sluice_guardrail_actions", "total", "Guardrail finds by guardrail, rule, action (block, redact, restore, log) and stage"),
                                 labels: [("guardrail", guardrail), ("rule", rule), ("action", action), ("stage", stage)])
        }
    }

    var cacheEvictions: Counter {
        handle(.cacheEvictions) {
            registry.makeCounter(descriptor: name("sluice_cache_evictions", "total", "Answers dropped from the in-memory cache to make room"), labels: [])
        }
    }

    var cacheBytes: Gauge {
        handle(.cacheBytes) {
            registry.makeGauge(descriptor: name("sluice_cache_bytes", "", "Size of the in-memory cache"), labels: [])
        }
    }

    func mcpCalls(server: String, method: String, tool: String, outcome: String, key: String) -> Counter {
        handle(.mcpCalls, server, method, tool, outcome, key) {
            registry.makeCounter(descriptor: name("sluice_mcp_calls", "total", "MCP JSON-RPC calls by server, method, tool, outcome and key"),
                                 labels: [("mcp_server", server), ("mcp_method", method), ("gen_ai_tool_name", tool), ("outcome", outcome), ("key_name", key)])
        }
    }

    func mcpDuration(server: String, method: String, tool: String, outcome: String) -> ValueHistogram {
        handle(.mcpDuration, server, method, tool, outcome) {
            registry.makeValueHistogram(descriptor: name("sluice_mcp_call_duration", "seconds", "Time from an MCP call to the end of its answer"),
                                        labels: [("mcp_server", server), ("mcp_method", method), ("gen_ai_tool_name", tool), ("outcome", outcome)],
                                        buckets: Self.secondsBuckets)
        }
    }

    /// 1 while a target's circuit is open (its requests skipped), 0 once closed again.
    func circuitOpen(provider: String, model: String) -> Gauge {
        handle(.circuitOpen, provider, model) {
            registry.makeGauge(descriptor: name("sluice_circuit_open", "", "1 while a provider target's circuit breaker is open or half-open"),
                               labels: [("provider", provider), ("upstream_model", model)])
        }
    }

    /// Spend-ledger batches the state database refused (their rows are kept and retried).
    var ledgerWriteFailures: Counter {
        handle(.ledgerWriteFailures) {
            registry.makeCounter(descriptor: name("sluice_ledger_write_failures", "total",
                                                  "Spend-ledger batches the state database failed to write (rows kept for the next try)"))
        }
    }

    /// Reservations the rate-limit store (Redis) failed to answer, by what became of the request.
    func rateLimitStoreErrors(action: String) -> Counter {
        handle(.rateLimitStoreErrors, action) {
            registry.makeCounter(descriptor: name("sluice_rate_limit_store_errors", "total",
                                                  "Rate-limit store failures, by what became of the request (allowed, refused)"),
                                 labels: [("action", action)])
        }
    }
}
