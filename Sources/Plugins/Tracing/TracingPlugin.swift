import Kernel
import NIOConcurrencyHelpers

/// Distributed tracing: continues the client's W3C trace (`traceparent`/`tracestate`), opens one
/// server span per request and one client span per upstream attempt (whose context goes to the
/// provider), with OpenTelemetry GenAI attributes, and exports them by OTLP/HTTP in batches off
/// the request path. An unreachable collector costs requests nothing: spans queue, bounded, and
/// are dropped.
///
/// The tracer is Sluice's own (`Tracer`, `SpanBuffer`, `SpanExporter`): swift-otel's cost some
/// 200 µs of CPU per request in task wakeups, locks and system calls (issue #26); a span here
/// costs a few clock reads, ids from a counter and one locked append.
public struct TracingPlugin: Middleware {
    public static let name = "tracing"
    public static let summary = "OpenTelemetry traces (W3C trace context in and out, OTLP/HTTP export)"

    public struct Settings: PluginSettings {
        @Setting("otlp_endpoint", "the collector's OTLP/HTTP root; spans go to {otlp_endpoint}/v1/traces")
        public var otlpEndpoint = "http://127.0.0.1:4318"
        @Setting("protocol", .choice(["http/protobuf", "http/json"]), "the OTLP encoding") public var encoding = "http/protobuf"
        @Setting("service_name", "service.name of the spans") public var serviceName = "sluice"
        @Setting("sample_ratio", .number(min: 0, max: 1), "share of new traces recorded (a sampled parent is always followed)")
        public var sampleRatio = 1.0
        @Setting("export_interval_ms", .positiveInteger, "how often batches of spans are sent") public var exportIntervalMilliseconds = 1000
        public init() {}
    }

    let tracer: Tracer
    let exporter: SpanExporter
    private let background: BackgroundWork
    private let exporting = NIOLockedValueBox<BackgroundJob?>(nil)

    public init(settings: Settings, context: PluginContext) throws {
        guard (0...1).contains(settings.sampleRatio) else {
            throw context.configError("sample_ratio", "expected a number from 0 to 1")
        }
        var endpoint = settings.otlpEndpoint
        let scheme = endpoint.prefix(8).lowercased()
        guard scheme.hasPrefix("http://") || scheme.hasPrefix("https://") else {
            throw context.configError("otlp_endpoint", "expected an http:// or https:// URL")
        }
        if endpoint.hasSuffix("/") { endpoint.removeLast() }
        let buffer = SpanBuffer()
        tracer = Tracer(sampler: TraceSampler(ratio: settings.sampleRatio), buffer: buffer)
        exporter = SpanExporter(buffer: buffer, url: endpoint + "/v1/traces", encoding: settings.encoding == "http/json" ? .json : .protobuf,
                                resource: OTLPResource(serviceName: settings.serviceName),
                                interval: .milliseconds(settings.exportIntervalMilliseconds),
                                upstream: context.upstream, allocator: context.allocator, logger: context.logger)
        background = context.background
    }

    public func start() async throws {
        let exporter = exporter
        // Off the event loops: encoding and sending a batch takes milliseconds.
        let job = background.start(offEventLoops: true) { await exporter.run() }
        exporting.withLockedValue { $0 = job }
    }

    /// Exports what is queued and stops the exporter; returns once it has stopped (at most about
    /// `SpanExporter.timeout` when the collector does not answer).
    public func shutdown() async {
        exporter.buffer.close()
        await exporting.withLockedValue { $0 }?.waitUntilEnded()
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        // The work before and after the wait is in synchronous functions: this frame lives as
        // long as the request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let ending = begin(request)
        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            ending.failed(error)
            throw error
        }
        return ending.finish(response)
    }

    /// Starts the request's span; returns only what the span's end needs (a stream's closure
    /// must not keep the request body).
    @inline(never)
    private func begin(_ request: GatewayRequest) -> ServerSpanEnd {
        let operation = Self.operationName(request.operation)
        let span = tracer.startSpan(Self.spanName(request, operation: operation), kind: .server,
                                    parent: TraceContext(headers: request.headers), parentIsRemote: true)
        request.context.attemptTracer = AttemptSpans(tracer: tracer, parent: span.context, operation: operation)
        return ServerSpanEnd(tracer: tracer, span: span, context: request.context, model: request.model,
                             frontDoor: request.dialect.rawValue, operation: operation)
    }

    /// `chat gpt-4o`; for MCP, `execute_tool {tool}` (GenAI's name for a tool call) or the method.
    static func spanName(_ request: GatewayRequest, operation: String) -> String {
        if let mcp = request.context.facts.mcp {
            if let tool = mcp.tool { return "execute_tool \(tool)" }
            return "mcp \(mcp.method)"
        }
        return request.model.isEmpty ? operation : "\(operation) \(request.model)"
    }

    static func operationName(_ operation: APIOperation) -> String {
        switch operation {
        case .chatCompletions, .messages: "chat"
        case .embeddings: "embeddings"
        case .moderations: "moderations"
        case .responses: "chat"  // the GenAI conventions name a Responses call a chat
        case .listModels: "models"
        case .storedResponse, .deleteStoredResponse, .storedResponseInputItems: "stored_response"
        case .other: "request"
        case .mcp: "mcp"
        }
    }
}

/// The end of a request's server span: every attribute at once, read from the request's context
/// when the answer (or its stream) has ended, so that usage, cost and the provider are known.
struct ServerSpanEnd: Sendable {
    let tracer: Tracer
    let span: OpenSpan
    let context: RequestContext
    let model: String
    let frontDoor: String
    let operation: String

    /// No answer came.
    @inline(never)
    func failed(_ error: any Error) {
        guard span.isRecording else { return }
        let failure = GatewayError(error)
        end(status: failure.status.code, error: failure)
    }

    /// A whole answer ends the span now; a stream, when it ends.
    @inline(never)
    func finish(_ response: GatewayResponse) -> GatewayResponse {
        guard span.isRecording else { return response }
        switch response.body {
        case .whole:
            end(status: response.status.code, error: nil)
            return response
        case .events(let events):
            var streamed = response
            let status = response.status.code
            streamed.body = .events(events.observing({ _ in }, finished: { error in
                end(status: status, error: error.map { GatewayError($0) })
            }))
            return streamed
        }
    }

    func end(status: UInt, error: GatewayError?) {
        guard span.isRecording else { return }
        let facts = context.facts
        var attributes: [SpanAttribute] = []
        attributes.reserveCapacity(16)
        attributes.append(SpanAttribute("gen_ai.operation.name", operation))
        attributes.append(SpanAttribute("gen_ai.request.model", model))
        attributes.append(SpanAttribute("sluice.request_id", context.requestID))
        attributes.append(SpanAttribute("sluice.front_door", frontDoor))
        attributes.append(SpanAttribute("http.response.status_code", Int(status)))
        if let identity = context.identity { attributes.append(SpanAttribute("sluice.key_name", identity.name)) }
        if let provider = facts.provider { attributes.append(SpanAttribute("gen_ai.provider.name", provider)) }
        if let model = facts.upstreamModel { attributes.append(SpanAttribute("gen_ai.response.model", model)) }
        attributes.append(SpanAttribute("sluice.attempts", facts.attempts))
        if let usage = context.usage {
            attributes.append(SpanAttribute("gen_ai.usage.input_tokens", usage.inputTokens))
            attributes.append(SpanAttribute("gen_ai.usage.output_tokens", usage.outputTokens))
        }
        if let cost = context.cost { attributes.append(SpanAttribute("sluice.cost_usd", cost)) }
        if let error { attributes.append(SpanAttribute("error.type", error.code ?? error.type)) }
        var status: SpanRecord.Status?
        if let mcp = facts.mcp {
            attributes.append(SpanAttribute("mcp.method.name", mcp.method))
            if let server = mcp.server { attributes.append(SpanAttribute("sluice.mcp.server", server)) }
            if let tool = mcp.tool { attributes.append(SpanAttribute("gen_ai.tool.name", tool)) }
            if let outcome = mcp.outcome {
                attributes.append(SpanAttribute("sluice.mcp.outcome", outcome))
                if outcome != "ok" { status = SpanRecord.Status(message: outcome) }
            }
        }
        if let error { status = SpanRecord.Status(message: error.message) }
        tracer.end(span, attributes: attributes, status: status)
    }
}
