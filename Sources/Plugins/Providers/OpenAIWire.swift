import Kernel
import NIOCore
import NIOHTTP1

/// Talking to an OpenAI-wire API: requests pass through, the model name patched and stream usage
/// requested (the Kernel translates other front doors' requests to these).
struct OpenAIWire: Sendable {
    let endpoint: OpenAIEndpoint
    let upstream: UpstreamClient
    /// Made once: `Provider.answer` asks for them on every request.
    let nativeOperations: Set<APIOperation>

    init(endpoint: OpenAIEndpoint, upstream: UpstreamClient) {
        self.endpoint = endpoint
        self.upstream = upstream
        var operations: Set<APIOperation> = [.chatCompletions, .embeddings]
        if endpoint.speaksResponses { operations.insert(.responses) }
        if endpoint.speaksModerations { operations.insert(.moderations) }
        nativeOperations = operations
    }

    // Each way waits in a function of its own, and what is done before and after the wait is
    // synchronous: these frames live as long as the request waits for its provider
    // (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    func send(_ call: ProviderCall) async throws -> GatewayResponse {
        let request = call.request
        switch (request.operation, request.dialect) {
        case (.chatCompletions, .openAI):
            return try await chat(call)
        case (.embeddings, .openAI):
            return try await passThrough("/embeddings", call, readsUsage: true)
        case (.responses, .openAI):
            return try await responses(call)
        case (.moderations, .openAI) where endpoint.speaksModerations:
            return try await passThrough("/moderations", call, readsUsage: false)
        default:
            throw GatewayError.invalidRequest("this provider does not serve \(request.operation.rawValue) requests")
        }
    }

    /// A whole answer to a body sent as the client wrote it, but for the model name.
    @inline(never)
    private func passThrough(_ path: String, _ call: ProviderCall, readsUsage: Bool) async throws -> GatewayResponse {
        let response = try await post(path, body: patchedBody(call), call: call)
        return try whole(response, usage: readsUsage ? call.request.context : nil) { Usage(openAI: JSONView.member("usage", in: $0)) }
    }

    @inline(never)
    private func patchedBody(_ call: ProviderCall) -> ByteBuffer {
        var body = call.request.body
        patchModel(&body, call.upstreamModel)
        return body.bytes(allocator: call.request.context.allocator)
    }

    /// `GET /models`: any HTTP answer below 500 means the server is there (a 401 says the key is
    /// wrong, which the detail shows).
    func probe() async -> ProbeResult {
        do {
            var headers = try endpoint.headers()
            headers.add(name: "accept", value: "application/json")
            headers.add(name: "user-agent", value: "sluice-health-probe")  // tells probes apart in providers' logs
            let response = try await upstream.send(UpstreamRequest(
                method: .GET, url: endpoint.url("/models", ""), headers: headers,
                timeouts: UpstreamTimeouts(connect: .seconds(2), firstByte: .seconds(5), total: .seconds(5)), caFile: endpoint.caFile, transport: endpoint.transport))
            return ProbeResult(isUp: response.status < 500, detail: "HTTP \(response.status)")
        } catch {
            return ProbeResult(isUp: false, detail: String(describing: error))
        }
    }

    // MARK: OpenAI clients

    @inline(never)
    private func chat(_ call: ProviderCall) async throws -> GatewayResponse {
        let context = call.request.context
        guard call.request.stream else {
            let response = try await post("/chat/completions", body: patchedBody(call), call: call)
            return try whole(response, usage: context) { Usage(openAI: JSONView.member("usage", in: $0)) }
        }
        let (body, injectUsage) = streamedChatBody(call)
        let events = try await postStream("/chat/completions", body: body, call: call)
        return stream(events.translating { OpenAIUsageTap(hidesUsageChunk: injectUsage) { context.usage = $0 } })
    }

    /// A streamed chat's body: the stream's usage is asked for when the client did not ask
    /// (`injectsUsage`), to be hidden from it again.
    @inline(never)
    private func streamedChatBody(_ call: ProviderCall) -> (bytes: ByteBuffer, injectsUsage: Bool) {
        var body = call.request.body
        patchModel(&body, call.upstreamModel)
        let askedOptions = body.member("stream_options")?.json
        let clientAskedForUsage = askedOptions?["include_usage"]?.bool == true
        let injectUsage = endpoint.requestsStreamUsage && !clientAskedForUsage
        if injectUsage {
            var options = askedOptions.flatMap { $0.isObject ? $0 : nil } ?? .object()
            options["include_usage"] = true
            body.replaceMember("stream_options", with: options)
        }
        return (body.bytes(allocator: call.request.context.allocator), injectUsage)
    }

    // MARK: Responses

    /// The Responses API spoken natively: the body passes through but for the model name.
    @inline(never)
    private func responses(_ call: ProviderCall) async throws -> GatewayResponse {
        let context = call.request.context
        guard call.request.stream else {
            let response = try await post("/responses", body: patchedBody(call), call: call)
            return try whole(response, usage: context) { Usage(responses: JSONView.member("usage", in: $0)) }
        }
        let events = try await postStream("/responses", body: patchedBody(call), call: call)
        return stream(events.translating { ResponsesUsageTap { context.usage = $0 } })
    }

    // MARK: Transport

    private func patchModel(_ body: inout RequestBody, _ model: String) {
        if body.member("model")?.string != model { body.replaceMember("model", with: model) }
    }

    @inline(never)
    private func upstreamRequest(_ path: String, body: ByteBuffer, call: ProviderCall) throws -> UpstreamRequest {
        var headers = try endpoint.headers()
        // One block: `add(name:value:)` checks each name for non-ASCII bytes, one at a time.
        headers.add(contentsOf: ["content-type": "application/json",
                                 "accept": call.request.stream ? "text/event-stream" : "application/json",
                                 "x-request-id": call.request.context.requestID])
        headers.addCallHeaders(call.headers)
        let timeout = min(endpoint.timeout, call.timeout)
        return UpstreamRequest(url: endpoint.url(path, call.upstreamModel), headers: headers, body: body,
                               timeouts: UpstreamTimeouts(connect: endpoint.connectTimeout, firstByte: timeout,
                                                          total: call.request.stream ? nil : timeout),
                               maxResponseBytes: endpoint.limits.maxResponseBytes, caFile: endpoint.caFile, transport: endpoint.transport)
    }

    @inline(never)
    private func post(_ path: String, body: ByteBuffer, call: ProviderCall) async throws -> UpstreamResponse {
        let response = try await upstream.send(try upstreamRequest(path, body: body, call: call))
        guard (200..<300).contains(response.status) else {
            throw UpstreamFailure.error(status: response.status, headers: response.headers, body: response.body)
        }
        return response
    }

    @inline(never)
    private func postStream(_ path: String, body: ByteBuffer, call: ProviderCall) async throws -> EventStream {
        let response = try await upstream.stream(try upstreamRequest(path, body: body, call: call))
        guard (200..<300).contains(response.status) else {
            throw UpstreamFailure.error(status: response.status, headers: response.headers, body: try await response.collect())
        }
        return endpoint.limits.events(response.body)
    }

    /// A whole answer passed through as the provider sent it, once it looks like the JSON object
    /// an OpenAI client expects (a proxy's HTML error page with status 200 is a 502, as on the
    /// translated path). A look at its type and its ends, not a parse: the bytes are forwarded.
    /// `usage`, given the request's context, reads the answer's usage when a stage first asks.
    @inline(never)
    private func whole(_ response: UpstreamResponse, usage context: RequestContext?,
                       read: @escaping @Sendable (ByteBuffer) -> Usage?) throws -> GatewayResponse {
        context?.setUsage(from: response.body, read: read)
        let type = response.headers.first(name: "content-type") ?? "application/json"
        guard Self.namesJSON(type), Self.looksLikeObject(response.body) else {
            throw GatewayError(.badGateway, type: "upstream_error", "the provider's answer is not JSON", code: "upstream_invalid")
        }
        return GatewayResponse(status: HTTPResponseStatus(statusCode: response.status), headers: ["content-type": type],
                               body: .whole(response.body))
    }

    /// Whether a content type says JSON (`application/json`, `application/problem+json`, any case).
    static func namesJSON(_ type: String) -> Bool {
        var type = type
        return type.withUTF8 { bytes in
            guard bytes.count >= 4 else { return false }
            // `| 0x20` lowers exactly the one capital of each of these letters.
            return (0...(bytes.count - 4)).contains { start in
                bytes[start] | 0x20 == UInt8(ascii: "j") && bytes[start + 1] | 0x20 == UInt8(ascii: "s")
                    && bytes[start + 2] | 0x20 == UInt8(ascii: "o") && bytes[start + 3] | 0x20 == UInt8(ascii: "n")
            }
        }
    }

    static func looksLikeObject(_ body: ByteBuffer) -> Bool {
        body.withUnsafeReadableBytes { bytes in
            let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
            return bytes.first(where: { !isSpace($0) }) == UInt8(ascii: "{") && bytes.last(where: { !isSpace($0) }) == UInt8(ascii: "}")
        }
    }

    private func stream(_ events: EventStream) -> GatewayResponse {
        GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream"], body: .events(events))
    }
}

/// Reads the usage chunk of an OpenAI stream, and hides it from a client that did not ask for it.
struct OpenAIUsageTap: EventTranslator {
    let hidesUsageChunk: Bool
    let onUsage: @Sendable (Usage) -> Void

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        guard let found = event.openAIUsage else { return [event] }
        onUsage(found.usage)
        return hidesUsageChunk && found.isUsageOnly ? [] : [event]
    }

    mutating func finish() throws -> [SSEEvent] { [] }
}

/// Reads the usage of a Responses stream from its last event (`response.completed`, or
/// `response.incomplete`), passing every event on.
struct ResponsesUsageTap: EventTranslator {
    let onUsage: @Sendable (Usage) -> Void

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        if event.dataContains("\"usage\""), let json = event.json, let usage = Usage(responses: json["response"]?["usage"]) {
            onUsage(usage)
        }
        return [event]
    }

    mutating func finish() throws -> [SSEEvent] { [] }
}
