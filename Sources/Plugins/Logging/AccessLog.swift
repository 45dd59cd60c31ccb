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
        // The work before and after the wait is in synchronous functions: this frame lives as
        // long as the request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let line = begin(request)
        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            failed(error, request, line)
            throw error
        }
        return finish(response, request, line)
    }

    /// What the line needs from before the request went on: its body is cut now (a stream's
    /// line is written when it ends, and must not hold the whole body till then).
    private struct Start {
        var requestBody: String?
        var traceID: String?
    }

    @inline(never)
    private func begin(_ request: GatewayRequest) -> Start {
        Start(requestBody: logBodies ? truncated(String(buffer: request.body.raw)) : nil,
              traceID: request.headers.first(name: "traceparent").flatMap(TraceParent.traceID))
    }

    @inline(never)
    private func failed(_ error: any Error, _ request: GatewayRequest, _ line: Start) {
        let failure = GatewayError(error)
        write(request, traceID: line.traceID, status: failure.status.code, error: failure, firstTokenAt: nil,
              requestBody: line.requestBody, responseBody: nil)
    }

    @inline(never)
    private func finish(_ response: GatewayResponse, _ request: GatewayRequest, _ line: Start) -> GatewayResponse {
        switch response.body {
        case .whole(let body):
            write(request, traceID: line.traceID, status: response.status.code, error: nil, firstTokenAt: nil,
                  requestBody: line.requestBody, responseBody: logBodies ? String(buffer: body) : nil)
            return response
        case .events(let events):
            // The line is written when the stream ends: the headers are kept only to be logged.
            let status = response.status.code, firstEvent = FirstEventClock()
            let request = logHeaders ? request.withoutBody : request.withoutBodyOrHeaders
            var streamed = response
            streamed.body = .events(events.observing({ _ in firstEvent.mark() }, finished: { error in
                write(request, traceID: line.traceID, status: status, error: error.map { GatewayError($0) }, firstTokenAt: firstEvent.time,
                      requestBody: line.requestBody, responseBody: nil,
                      streamEnd: error == nil ? "complete" : (error is CancellationError ? "client_gone" : "failed"))
            }))
            return streamed
        }
    }

    private func write(_ request: GatewayRequest, traceID: String?, status: UInt, error: GatewayError?, firstTokenAt: ContinuousClock.Instant?,
                       requestBody: String?, responseBody: String?, streamEnd: String? = nil) {
        logger.log(level: .info, "request", fields: AccessLine(
            request: request, facts: request.context.facts, now: .now, traceID: traceID, status: status, error: error,
            firstTokenAt: firstTokenAt, streamEnd: streamEnd, logHeaders: logHeaders, requestBody: requestBody,
            responseBody: responseBody.map(truncated)))
    }

    private func truncated(_ text: String) -> String {
        text.count <= maxBodyCharacters ? text : String(text.prefix(maxBodyCharacters)) + "…[cut]"
    }

    /// Milliseconds with two decimals.
    static func milliseconds(_ duration: Duration) -> Double {
        (duration.inSeconds * 100_000).rounded() / 100
    }
}

/// The fields of one access log line, in the order they are written.
struct AccessLine: LogFields {
    let request: GatewayRequest
    let facts: RequestFacts
    let now: ContinuousClock.Instant
    let traceID: String?
    let status: UInt
    let error: GatewayError?
    let firstTokenAt: ContinuousClock.Instant?
    let streamEnd: String?
    let logHeaders: Bool
    let requestBody: String?
    let responseBody: String?

    func write(to sink: inout some LogFieldSink) {
        let context = request.context
        sink.add("request_id", context.requestID)
        sink.add("front_door", request.dialect.rawValue)
        sink.add("operation", request.operation.rawValue)
        sink.add("model", request.model)
        sink.add("status", Int(status))
        sink.add("attempts", facts.attempts)
        sink.add("stream", request.stream)
        sink.add("latency_ms", AccessLog.milliseconds(now - context.receivedAt))
        if let traceID { sink.add("trace_id", traceID) }
        if let name = context.identity?.name { sink.add("key_name", name) }
        if let provider = facts.provider { sink.add("provider", provider) }
        if let upstreamModel = facts.upstreamModel { sink.add("upstream_model", upstreamModel) }
        if facts.usedFallback { sink.add("fallback", true) }
        if let upstream = facts.upstreamTime(now: now, streamed: streamEnd != nil) {
            sink.add("upstream_ms", AccessLog.milliseconds(upstream))
            sink.add("overhead_ms", AccessLog.milliseconds(max(.zero, (now - context.receivedAt) - upstream)))
        }
        if let firstTokenAt { sink.add("ttft_ms", AccessLog.milliseconds(firstTokenAt - context.receivedAt)) }
        if let usage = context.usage {
            sink.add("input_tokens", usage.inputTokens)
            sink.add("output_tokens", usage.outputTokens)
            if usage.cachedInputTokens > 0 { sink.add("cached_input_tokens", usage.cachedInputTokens) }
        }
        if let cost = context.cost { sink.add("cost_usd", cost) }
        if let cache = facts.cacheStatus { sink.add("cache", cache) }
        if let streamEnd { sink.add("stream_end", streamEnd) }
        if let mcp = facts.mcp {
            sink.add("mcp_method", mcp.method)
            if let server = mcp.server { sink.add("mcp_server", server) }
            if let name = mcp.name { sink.add(mcp.method == "prompts/get" ? "mcp_prompt" : "mcp_tool", name) }
            if let outcome = mcp.outcome { sink.add("mcp_outcome", outcome) }
        }
        if let error {
            sink.add("error_type", error.type)
            if let code = error.code { sink.add("error_code", code) }
        }
        if logHeaders {
            var headers: Logger.Metadata = [:]
            for (name, value) in request.headers {
                let name = name.lowercased()
                headers[name] = .string(HeaderRedaction.shown(name, value, knownKeys: context.credentials))
            }
            sink.add("headers", .dictionary(headers))
        }
        if let requestBody { sink.add("request_body", requestBody) }
        if let responseBody { sink.add("response_body", responseBody) }
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
