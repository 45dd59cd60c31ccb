import Kernel
import NIOConcurrencyHelpers
import NIOHTTP1
import OTel
import ServiceLifecycle
import Tracing

/// Distributed tracing: continues the client's W3C trace (`traceparent`/`tracestate`), opens one
/// server span per request and one client span per upstream attempt (whose context goes to the
/// provider), with OpenTelemetry GenAI attributes, and exports them by OTLP/HTTP in batches off
/// the request path. An unreachable collector costs requests nothing: spans queue and are dropped.
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

    let backend: TracingBackend

    public init(settings: Settings, context: PluginContext) throws {
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.diagnosticLogLevel = .error
        configuration.propagators = [.traceContext]
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.exporter = .otlp
        var endpoint = settings.otlpEndpoint
        if endpoint.hasSuffix("/") { endpoint.removeLast() }
        configuration.traces.otlpExporter.endpoint = endpoint + "/v1/traces"
        configuration.traces.otlpExporter.protocol = settings.encoding == "http/json" ? .httpJSON : .httpProtobuf
        configuration.traces.otlpExporter.timeout = .seconds(2)
        configuration.traces.batchSpanProcessor.scheduleDelay = .milliseconds(settings.exportIntervalMilliseconds)
        guard let sampler = OTel.Configuration.TracesConfiguration.SamplerConfiguration.parentBasedTraceIDRatio(ratio: settings.sampleRatio) else {
            throw context.configError("sample_ratio", "expected a number from 0 to 1")
        }
        configuration.traces.sampler = sampler
        do {
            let otel = try OTel.makeTracingBackend(configuration: configuration)
            backend = TracingBackend(tracer: otel.factory, exporter: ServiceGroup(services: [otel.service], logger: context.logger),
                                     background: context.background)
        } catch {
            throw context.configError(nil, "cannot set up the OTLP exporter: \(error)")
        }
    }

    public func start() async throws {
        backend.start()
    }

    public func shutdown() async {
        await backend.shutdown()
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        var parent = ServiceContext.topLevel
        let tracer = backend.tracer
        tracer.extract(request.headers, into: &parent, using: HeadersExtractor())
        let operation = Self.operationName(request.operation)
        let span = tracer.startAnySpan(Self.spanName(request, operation: operation), context: parent, ofKind: .server)
        request.context.attemptTracer = AttemptSpans(backend: backend, parent: span.context, operation: operation)

        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            finish(span, request: request, operation: operation, status: GatewayError(error).status.code, error: GatewayError(error))
            throw error
        }
        switch response.body {
        case .whole:
            finish(span, request: request, operation: operation, status: response.status.code, error: nil)
            return response
        case .events(let events):
            var streamed = response
            let status = response.status.code, request = request.withoutBody
            streamed.body = .events(events.observing({ _ in }, finished: { error in
                finish(span, request: request, operation: operation, status: status, error: error.map { GatewayError($0) })
            }))
            return streamed
        }
    }

    /// Sets every attribute at once, at the end: each update copies the attributes under a lock,
    /// and a span without them is smaller for as long as its stream is open.
    private func finish(_ span: any Span, request: GatewayRequest, operation: String, status: UInt, error: GatewayError?) {
        let context = request.context
        let facts = context.facts
        span.updateAttributes { attributes in
            attributes["gen_ai.operation.name"] = operation
            attributes["gen_ai.request.model"] = request.model
            attributes["sluice.request_id"] = context.requestID
            attributes["sluice.front_door"] = request.dialect.rawValue
            attributes["http.response.status_code"] = Int(status)
            if let identity = context.identity { attributes["sluice.key_name"] = identity.name }
            if let provider = facts.provider { attributes["gen_ai.provider.name"] = provider }
            if let model = facts.upstreamModel { attributes["gen_ai.response.model"] = model }
            attributes["sluice.attempts"] = facts.attempts
            if let usage = context.usage {
                attributes["gen_ai.usage.input_tokens"] = usage.inputTokens
                attributes["gen_ai.usage.output_tokens"] = usage.outputTokens
            }
            if let cost = context.cost { attributes["sluice.cost_usd"] = cost }
            if let error { attributes["error.type"] = error.code ?? error.type }
            if let mcp = facts.mcp {
                attributes["mcp.method.name"] = mcp.method
                if let server = mcp.server { attributes["sluice.mcp.server"] = server }
                if let tool = mcp.tool { attributes["gen_ai.tool.name"] = tool }
                if let outcome = mcp.outcome { attributes["sluice.mcp.outcome"] = outcome }
            }
        }
        if let error { span.setStatus(SpanStatus(code: .error, message: error.message)) }
        else if let outcome = facts.mcp?.outcome, outcome != "ok" { span.setStatus(SpanStatus(code: .error, message: outcome)) }
        span.end()
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
        case .responses: "chat"  // the GenAI conventions name a Responses call a chat
        case .listModels: "models"
        case .storedResponse, .deleteStoredResponse, .storedResponseInputItems: "stored_response"
        case .other: "request"
        case .mcp: "mcp"
        }
    }
}

/// Client spans for a request's upstream attempts, children of its server span.
struct AttemptSpans: AttemptTracer {
    let backend: TracingBackend
    let parent: ServiceContext
    let operation: String

    func startAttempt(provider: String, upstreamModel: String, attempt: Int) -> AttemptSpan {
        let tracer = backend.tracer
        let span = tracer.startAnySpan("\(operation) \(upstreamModel)", context: parent, ofKind: .client)
        var headers = HTTPHeaders()
        tracer.inject(span.context, into: &headers, using: HeadersInjector())
        let operation = operation
        return AttemptSpan(headers: headers) { error, usage in
            // All at the end, as for the server span.
            span.updateAttributes { attributes in
                attributes["gen_ai.operation.name"] = operation
                attributes["gen_ai.provider.name"] = provider
                attributes["gen_ai.request.model"] = upstreamModel
                attributes["sluice.attempt"] = attempt
                if let usage {
                    attributes["gen_ai.usage.input_tokens"] = usage.inputTokens
                    attributes["gen_ai.usage.output_tokens"] = usage.outputTokens
                }
                if let error { attributes["error.type"] = error.code ?? error.type }
            }
            if let error { span.setStatus(SpanStatus(code: .error, message: error.message)) }
            span.end()
        }
    }
}

struct HeadersExtractor: Extractor {
    func extract(key: String, from headers: HTTPHeaders) -> String? { headers.first(name: key) }
}

struct HeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) { headers.replaceOrAdd(name: key, value: value) }
}
