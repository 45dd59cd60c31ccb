import Kernel
import NIOCore
import NIOHTTP1

/// Talking to a Messages API (Anthropic's, or Claude on Vertex AI): requests pass through but for
/// the model name (the Kernel translates other front doors' requests to Messages).
struct AnthropicWire: Sendable {
    let endpoint: AnthropicEndpoint
    let upstream: UpstreamClient

    /// Made once: `Provider.answer` asks on every request.
    static let nativeOperations: Set<APIOperation> = [.messages]

    func send(_ call: ProviderCall) async throws -> GatewayResponse {
        let request = call.request
        guard request.operation == .messages, request.dialect == .anthropic else {
            throw GatewayError.invalidRequest("this Messages API does not serve \(request.operation.rawValue) requests")
        }
        // The body is made, and a whole answer taken, in synchronous functions, and each way waits
        // in a function of its own: these frames live as long as the request waits for its
        // provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let bytes = body(for: call)
        let context = request.context
        guard request.stream else { return whole(try await post(bytes, call: call), context: context) }
        return stream(try await postStream(bytes, call: call).translating { AnthropicUsageTap { context.usage = $0 } })
    }

    /// The body sent: the client's, but for the model name (or the version a Vertex AI body names
    /// instead), and `max_tokens`, which only a translated request can lack.
    @inline(never)
    private func body(for call: ProviderCall) -> ByteBuffer {
        var body = call.request.body
        if let version = endpoint.bodyVersion {
            body.replaceMember("model", with: nil)
            body.replaceMember("anthropic_version", with: version)
        } else if body.member("model")?.string != call.upstreamModel {
            body.replaceMember("model", with: call.upstreamModel)
        }
        if body.member("max_tokens") == nil { body.replaceMember("max_tokens", with: JSON(endpoint.defaultMaxTokens)) }
        return body.bytes(allocator: call.request.context.allocator)
    }

    @inline(never)
    private func whole(_ response: UpstreamResponse, context: RequestContext) -> GatewayResponse {
        context.setUsage(from: response.body) { Usage(anthropic: JSONView.member("usage", in: $0)) }
        return GatewayResponse(status: .ok, headers: ["content-type": "application/json"], body: .whole(response.body))
    }

    @inline(never)
    private func upstreamRequest(_ body: ByteBuffer, call: ProviderCall) async throws -> UpstreamRequest {
        var headers = try await endpoint.authentication()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "accept", value: call.request.stream ? "text/event-stream" : "application/json")
        headers.add(name: "x-request-id", value: call.request.context.requestID)
        if let beta = call.request.headers.first(name: "anthropic-beta") { headers.add(name: "anthropic-beta", value: beta) }
        headers.addCallHeaders(call.headers)
        for (name, value) in endpoint.headers { headers.replaceOrAdd(name: name, value: value) }
        let timeout = min(endpoint.timeout, call.timeout)
        return UpstreamRequest(url: endpoint.url(call.upstreamModel, call.request.stream), headers: headers, body: body,
                               timeouts: UpstreamTimeouts(connect: endpoint.connectTimeout, firstByte: timeout,
                                                          total: call.request.stream ? nil : timeout),
                               maxResponseBytes: endpoint.limits.maxResponseBytes, caFile: endpoint.caFile, transport: endpoint.transport)
    }

    @inline(never)
    private func post(_ body: ByteBuffer, call: ProviderCall) async throws -> UpstreamResponse {
        let response = try await upstream.send(try await upstreamRequest(body, call: call))
        guard (200..<300).contains(response.status) else {
            throw UpstreamFailure.error(status: response.status, headers: response.headers, body: response.body)
        }
        return response
    }

    @inline(never)
    private func postStream(_ body: ByteBuffer, call: ProviderCall) async throws -> EventStream {
        let response = try await upstream.stream(try await upstreamRequest(body, call: call))
        guard (200..<300).contains(response.status) else {
            throw UpstreamFailure.error(status: response.status, headers: response.headers, body: try await response.collect())
        }
        return endpoint.limits.events(response.body)
    }

    private func stream(_ events: EventStream) -> GatewayResponse {
        GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream"], body: .events(events))
    }
}

/// Reads usage from an Anthropic stream passing through: input from message_start, output from
/// message_delta. Turns an `event: error` into an error, so the client gets it in its own shape.
struct AnthropicUsageTap: EventTranslator {
    let onUsage: @Sendable (Usage) -> Void
    private var usage = Usage(inputTokens: 0, outputTokens: 0)

    init(onUsage: @escaping @Sendable (Usage) -> Void) { self.onUsage = onUsage }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        switch event.event {
        case "message_start":
            usage = Usage(anthropic: event.json?["message"]?["usage"]) ?? usage
        case "message_delta":
            if let output = event.json?["usage"]?["output_tokens"]?.tokenCount { usage.outputTokens = output }
            onUsage(usage)
        case "error":
            if let json = event.json { throw GatewayError(anthropicStreamError: json) }
        default:
            break
        }
        return [event]
    }

    mutating func finish() throws -> [SSEEvent] { [] }
}
