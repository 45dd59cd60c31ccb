import Foundation
import Kernel
import NIOCore
import NIOHTTP1

/// Where a Gemini API lives and how to reach it: Google AI Studio's, or Vertex AI's.
struct GeminiEndpoint: Sendable {
    /// The URL of a model's method (`generateContent`, `streamGenerateContent`, …), without query.
    var url: @Sendable (_ model: String, _ method: String) -> String
    /// The credential headers (a token may have to be fetched first).
    var authentication: @Sendable () async throws -> HTTPHeaders
    var embeddings: GeminiEmbeddings.Style
    var headers: [(key: String, value: String)]
    var timeout: Duration
    var connectTimeout: Duration
    var transport: UpstreamTransport
    var limits: AnswerLimits
    var caFile: String?

    init(url: @escaping @Sendable (_ model: String, _ method: String) -> String,
         authentication: @escaping @Sendable () async throws -> HTTPHeaders,
         embeddings: GeminiEmbeddings.Style, connection: ProviderConnection) {
        self.url = url
        self.authentication = authentication
        self.embeddings = embeddings
        headers = connection.headers.pairs
        timeout = .seconds(connection.timeout)
        connectTimeout = .seconds(connection.connectTimeout)
        transport = connection.upstreamTransport
        limits = connection.limits
        caFile = connection.caFile
    }

    /// A model name as a path segment (`models/` dropped: admins copy names from Google's lists).
    static func segment(_ model: String) -> String {
        let name = model.hasPrefix("models/") ? String(model.dropFirst("models/".count)) : model
        return name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/", ":"])) ?? name
    }
}

/// Talking to Gemini: chat completions translated to `generateContent` and back, embeddings to
/// `batchEmbedContents` (or Vertex AI's `predict`). The Kernel translates Messages and Responses
/// requests to chat completions first.
struct GeminiWire: Sendable {
    let endpoint: GeminiEndpoint
    let upstream: UpstreamClient

    static let nativeOperations = APIOperation.chatAndEmbeddings

    func send(_ call: ProviderCall) async throws -> GatewayResponse {
        switch call.request.operation {
        case .chatCompletions: return try await chat(call)
        case .embeddings: return try await embeddings(call)
        default: throw GatewayError.invalidRequest("this model's provider does not serve \(call.request.operation.rawValue) requests")
        }
    }

    // Each way waits in a function of its own, and the translations around the waits are
    // synchronous: these frames live as long as the request waits for its provider
    // (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    @inline(never)
    private func chat(_ call: ProviderCall) async throws -> GatewayResponse {
        let body = try ChatToGeminiRequest.translate(call.request.body.json).encoded(using: call.request.context.allocator)
        guard call.request.stream else { return try await wholeChat(body, call: call) }
        return try await streamedChat(body, call: call)
    }

    @inline(never)
    private func wholeChat(_ body: ByteBuffer, call: ProviderCall) async throws -> GatewayResponse {
        let answer = try await post(endpoint.url(call.upstreamModel, "generateContent"), body: body, call: call)
        return completion(answer, call: call)
    }

    @inline(never)
    private func completion(_ answer: JSON, call: ProviderCall) -> GatewayResponse {
        let context = call.request.context
        if let usage = GeminiToChat.usage(answer["usageMetadata"])?.usage { context.usage = usage }
        return whole(GeminiToChat.completion(answer, model: call.upstreamModel), context: context)
    }

    @inline(never)
    private func streamedChat(_ body: ByteBuffer, call: ProviderCall) async throws -> GatewayResponse {
        let url = endpoint.url(call.upstreamModel, "streamGenerateContent") + "?alt=sse"
        let response = try await upstream.stream(try await upstreamRequest(url, body: body, call: call))
        guard (200..<300).contains(response.status) else {
            throw GeminiFailure.error(status: response.status, headers: response.headers, body: try await response.collect())
        }
        return events(response.body, call: call)
    }

    @inline(never)
    private func events(_ body: UpstreamBody, call: ProviderCall) -> GatewayResponse {
        let includeUsage = call.request.body.json["stream_options"]?["include_usage"]?.bool == true
        let model = call.upstreamModel, context = call.request.context
        let events = endpoint.limits.events(body).translating {
            GeminiToChatStream(model: model, includeUsage: includeUsage) { context.usage = $0 }
        }
        return GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream"], body: .events(events))
    }

    @inline(never)
    private func embeddings(_ call: ProviderCall) async throws -> GatewayResponse {
        let context = call.request.context
        let asked = call.request.body.json
        let style = endpoint.embeddings
        let body = try GeminiEmbeddings.request(asked, model: GeminiEndpoint.segment(call.upstreamModel), style: style)
        let method = style == .predict ? "predict" : "batchEmbedContents"
        let answer = try await post(endpoint.url(call.upstreamModel, method), body: body.encoded(using: context.allocator), call: call)
        let (json, usage) = try GeminiEmbeddings.answer(answer, asked: asked, model: call.upstreamModel, style: style)
        context.usage = usage
        return whole(json, context: context)
    }

    // MARK: Transport

    @inline(never)
    private func upstreamRequest(_ url: String, method: HTTPMethod = .POST, body: ByteBuffer?, call: ProviderCall) async throws -> UpstreamRequest {
        var headers = try await endpoint.authentication()
        if body != nil { headers.add(name: "content-type", value: "application/json") }
        headers.add(name: "accept", value: call.request.stream ? "text/event-stream" : "application/json")
        headers.add(name: "x-request-id", value: call.request.context.requestID)
        headers.addCallHeaders(call.headers)
        for (name, value) in endpoint.headers { headers.replaceOrAdd(name: name, value: value) }
        let timeout = min(endpoint.timeout, call.timeout)
        return UpstreamRequest(method: method, url: url, headers: headers, body: body,
                               timeouts: UpstreamTimeouts(connect: endpoint.connectTimeout, firstByte: timeout,
                                                          total: call.request.stream ? nil : timeout),
                               maxResponseBytes: endpoint.limits.maxResponseBytes, caFile: endpoint.caFile, transport: endpoint.transport)
    }

    /// A whole answer, parsed; an error status becomes the client's error.
    @inline(never)
    private func post(_ url: String, body: ByteBuffer, call: ProviderCall) async throws -> JSON {
        let response = try await upstream.send(try await upstreamRequest(url, body: body, call: call))
        guard (200..<300).contains(response.status) else {
            throw GeminiFailure.error(status: response.status, headers: response.headers, body: response.body)
        }
        guard let json = try? JSON.parse(response.body), json.isObject else {
            throw GatewayError(.badGateway, type: "upstream_error", "the provider's answer is not JSON", code: "upstream_invalid")
        }
        return json
    }

    private func whole(_ json: JSON, context: RequestContext) -> GatewayResponse {
        GatewayResponse(status: .ok, headers: ["content-type": "application/json"], body: .whole(json.encoded(using: context.allocator)))
    }

    /// `GET url` with the provider's credentials: any HTTP answer below 500 means Google is there
    /// (a 400 or 403 says the credentials are wrong, which the detail shows).
    func probe(_ url: String) async -> ProbeResult {
        do {
            var headers = try await endpoint.authentication()
            headers.add(name: "accept", value: "application/json")
            headers.add(name: "user-agent", value: "sluice-health-probe")  // tells probes apart in providers' logs
            for (name, value) in endpoint.headers { headers.replaceOrAdd(name: name, value: value) }
            let response = try await upstream.send(UpstreamRequest(
                method: .GET, url: url, headers: headers,
                timeouts: UpstreamTimeouts(connect: .seconds(2), firstByte: .seconds(5), total: .seconds(5)), caFile: endpoint.caFile, transport: endpoint.transport))
            return ProbeResult(isUp: response.status < 500, detail: "HTTP \(response.status)")
        } catch let error as GatewayError {
            return ProbeResult(isUp: false, detail: error.message)
        } catch {
            return ProbeResult(isUp: false, detail: String(describing: error))
        }
    }
}
