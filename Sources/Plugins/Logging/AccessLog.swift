import Kernel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One structured log line per request, written when the answer is complete (for a stream: when
/// it ends, however it ends): who, which model and provider, status, attempts, latency split into
/// upstream time and gateway overhead, time to first token, tokens, cost. Put it first in the
/// pipeline so it also sees requests that later stages refuse.
public struct AccessLog: Middleware {
    public static let name = "access-log"
    public static let summary = "one JSON line per completed request, streams included"

    public struct Settings: PluginSettings {
        @Setting("log_headers", "include request headers (a value whose name or shape suggests a credential is redacted)")
        public var logHeaders = false
        @Setting("log_bodies", "include the request body and a whole response body (opt-in: prompts may be sensitive)")
        public var logBodies = false
        @Setting("max_body_chars", .positiveInteger, "longest body text logged; the rest is cut") public var maxBodyCharacters = 2048
        public init() {}
    }

    let logHeaders: Bool
    let logBodies: Bool
    let maxBodyCharacters: Int
    let logger: Logger

    public init(settings: Settings, context: PluginContext) throws {
        logHeaders = settings.logHeaders
        logBodies = settings.logBodies
        maxBodyCharacters = settings.maxBodyCharacters
        var logger = Logger(label: "sluice.access")
        logger.logLevel = .info
        self.logger = logger
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        // Cut now: a stream's line is written when it ends, and must not hold the whole body till then.
        let requestBody = logBodies ? truncated(String(buffer: request.body.raw)) : nil
        let traceID = request.headers.first(name: "traceparent").flatMap(TraceParent.traceID)
        var response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            write(request, traceID: traceID, status: GatewayError(error).status.code, error: GatewayError(error), firstTokenAt: nil,
                  requestBody: requestBody, responseBody: nil)
            throw error
        }
        switch response.body {
        case .whole(let body):
            write(request, traceID: traceID, status: response.status.code, error: nil, firstTokenAt: nil,
                  requestBody: requestBody, responseBody: logBodies ? String(buffer: body) : nil)
        case .events(let events):
            // The line is written when the stream ends: the headers are kept only to be logged.
            let status = response.status.code, firstEvent = FirstEventClock()
            let request = logHeaders ? request.withoutBody : request.withoutBodyOrHeaders
            response.body = .events(events.observing({ _ in firstEvent.mark() }, finished: { error in
                write(request, traceID: traceID, status: status, error: error.map { GatewayError($0) }, firstTokenAt: firstEvent.time,
                      requestBody: requestBody, responseBody: nil,
                      streamEnd: error == nil ? "complete" : (error is CancellationError ? "client_gone" : "failed"))
            }))
        }
        return response
    }

    private func write(_ request: GatewayRequest, traceID: String?, status: UInt, error: GatewayError?, firstTokenAt: ContinuousClock.Instant?,
                       requestBody: String?, responseBody: String?, streamEnd: String? = nil) {
        let context = request.context
        let facts = context.facts
        let now = ContinuousClock.now
        // Room for a usual line's fields at once: a literal's dictionary would grow (rehash) twice.
        var fields = Logger.Metadata(minimumCapacity: 24)
        fields["request_id"] = .string(context.requestID)
        fields["front_door"] = .string(request.dialect.rawValue)
        fields["operation"] = .string(request.operation.rawValue)
        fields["model"] = .string(request.model)
        fields["status"] = .stringConvertible(status)
        fields["attempts"] = .stringConvertible(facts.attempts)
        fields["stream"] = .stringConvertible(request.stream)
        fields["latency_ms"] = .stringConvertible(Self.milliseconds(now - context.receivedAt))
        if let traceID { fields["trace_id"] = .string(traceID) }
        if let name = context.identity?.name { fields["key_name"] = .string(name) }
        if let provider = facts.provider { fields["provider"] = .string(provider) }
        if let upstreamModel = facts.upstreamModel { fields["upstream_model"] = .string(upstreamModel) }
        if facts.usedFallback { fields["fallback"] = .stringConvertible(true) }
        if let upstream = facts.upstreamTime(now: now, streamed: streamEnd != nil) {
            fields["upstream_ms"] = .stringConvertible(Self.milliseconds(upstream))
            fields["overhead_ms"] = .stringConvertible(Self.milliseconds(max(.zero, (now - context.receivedAt) - upstream)))
        }
        if let firstTokenAt { fields["ttft_ms"] = .stringConvertible(Self.milliseconds(firstTokenAt - context.receivedAt)) }
        if let usage = context.usage {
            fields["input_tokens"] = .stringConvertible(usage.inputTokens)
            fields["output_tokens"] = .stringConvertible(usage.outputTokens)
            if usage.cachedInputTokens > 0 { fields["cached_input_tokens"] = .stringConvertible(usage.cachedInputTokens) }
        }
        if let cost = context.cost { fields["cost_usd"] = .stringConvertible(cost) }
        if let cache = facts.cacheStatus { fields["cache"] = .string(cache) }
        if let streamEnd { fields["stream_end"] = .string(streamEnd) }
        if let mcp = facts.mcp {
            fields["mcp_method"] = .string(mcp.method)
            if let server = mcp.server { fields["mcp_server"] = .string(server) }
            if let name = mcp.name { fields[mcp.method == "prompts/get" ? "mcp_prompt" : "mcp_tool"] = .string(name) }
            if let outcome = mcp.outcome { fields["mcp_outcome"] = .string(outcome) }
        }
        if let error {
            fields["error_type"] = .string(error.type)
            if let code = error.code { fields["error_code"] = .string(code) }
        }
        if logHeaders {
            var headers: Logger.Metadata = [:]
            for (name, value) in request.headers {
                let name = name.lowercased()
                headers[name] = .string(HeaderRedaction.shown(name, value, knownKeys: request.context.credentials))
            }
            fields["headers"] = .dictionary(headers)
        }
        if let requestBody { fields["request_body"] = .string(requestBody) }
        if let responseBody { fields["response_body"] = .string(truncated(responseBody)) }
        logger.info("request", metadata: fields)
    }

    private func truncated(_ text: String) -> String {
        text.count <= maxBodyCharacters ? text : String(text.prefix(maxBodyCharacters)) + "…[cut]"
    }

    /// Milliseconds with two decimals.
    static func milliseconds(_ duration: Duration) -> Double {
        (duration.inSeconds * 100_000).rounded() / 100
    }
}

/// The time of a stream's first event (its first token, for chat streams).
final class FirstEventClock: Sendable {
    private let first = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    func mark() { first.withLockedValue { if $0 == nil { $0 = .now } } }
    var time: ContinuousClock.Instant? { first.withLockedValue { $0 } }
}

/// W3C trace context: the trace id of a `traceparent` header (`00-TRACEID-SPANID-FLAGS`).
enum TraceParent {
    static func traceID(_ header: String) -> String? {
        let parts = header.split(separator: "-")
        guard parts.count == 4, parts[1].count == 32, parts[1].allSatisfy(\.isHexDigit) else { return nil }
        return String(parts[1])
    }
}
