import Foundation
import Kernel
import NIOCore
import NIOHTTP1

/// Talking to Bedrock Runtime: chat requests translated to Converse and the answers back,
/// embeddings through InvokeModel, every request signed.
struct BedrockWire: Sendable {
    let settings: BedrockSettings
    let upstream: UpstreamClient

    func send(_ call: ProviderCall) async throws -> GatewayResponse {
        let request = call.request
        switch (request.operation, request.dialect) {
        case (.chatCompletions, .openAI):
            return try await chat(call)
        case (.embeddings, .openAI):
            return try await embeddings(call)
        default:
            throw GatewayError.invalidRequest("Amazon Bedrock does not serve \(request.operation.rawValue) requests here")
        }
    }

    // MARK: Chat

    // Each way waits in a function of its own, and the translations around the waits are
    // synchronous: these frames live as long as the request waits for its provider
    // (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    @inline(never)
    private func chat(_ call: ProviderCall) async throws -> GatewayResponse {
        let body = try ChatToConverseRequest.translate(call.request.body.json).encoded(using: call.request.context.allocator)
        guard call.request.stream else { return try await wholeChat(body, call: call) }
        return try await streamedChat(body, call: call)
    }

    @inline(never)
    private func wholeChat(_ body: ByteBuffer, call: ProviderCall) async throws -> GatewayResponse {
        let response = try await post(BedrockEndpoint.modelPath(call.upstreamModel, "converse"), body: body, call: call)
        return try completion(response, call: call)
    }

    @inline(never)
    private func completion(_ response: UpstreamResponse, call: ProviderCall) throws -> GatewayResponse {
        let context = call.request.context
        guard let converse = try? JSON.parse(response.body), converse.isObject else { throw Self.notJSON }
        context.usage = ConverseToChat.usage(converse["usage"])
        let id = ConverseToChat.completionID(requestID: response.headers.first(name: "x-amzn-requestid"))
        let completion = ConverseToChat.completion(converse, id: id, model: call.upstreamModel)
        return GatewayResponse(status: .ok, headers: ["content-type": "application/json"],
                               body: .whole(completion.encoded(using: context.allocator)))
    }

    @inline(never)
    private func streamedChat(_ body: ByteBuffer, call: ProviderCall) async throws -> GatewayResponse {
        let response = try await upstream.stream(signed(BedrockEndpoint.modelPath(call.upstreamModel, "converse-stream"), body: body,
                                                        call: call, accept: "application/vnd.amazon.eventstream"))
        guard (200..<300).contains(response.status) else {
            throw BedrockFailure.error(status: response.status, headers: response.headers, body: try await response.collect())
        }
        return events(response, call: call)
    }

    @inline(never)
    private func events(_ response: UpstreamStreamingResponse, call: ProviderCall) -> GatewayResponse {
        let id = ConverseToChat.completionID(requestID: response.headers.first(name: "x-amzn-requestid"))
        let includeUsage = call.request.body.json["stream_options"]?["include_usage"]?.bool == true
        let model = call.upstreamModel, context = call.request.context
        let events = EventStream(EventStreamSequence(response.body, maxMessageBytes: settings.limits.maxEventBytes)).translating {
            ConverseStreamToChat(id: id, model: model, includeUsage: includeUsage) { context.usage = $0 }
        }
        return GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream"], body: .events(events))
    }

    // MARK: Embeddings

    /// One InvokeModel call per batch the model takes (Titan: one input, Cohere: up to 96), a
    /// few in flight at once, the vectors put back in input order.
    private func embeddings(_ call: ProviderCall) async throws -> GatewayResponse {
        let request = call.request
        let json = request.body.json
        guard let family = BedrockEmbeddings.Family(model: call.upstreamModel) else {
            throw GatewayError.invalidRequest("embeddings from \"\(call.upstreamModel)\" are not supported: Amazon Bedrock's Titan "
                                              + "(amazon.titan-embed-*) and Cohere (cohere.embed-*) models are", param: "model")
        }
        let bodies = try family.requests(for: json)
        let path = BedrockEndpoint.modelPath(call.upstreamModel, "invoke")
        let allocator = request.context.allocator
        let width = settings.embeddingConcurrency
        let answers = try await withThrowingTaskGroup(of: (Int, UpstreamResponse).self) { group in
            var answers = [UpstreamResponse?](repeating: nil, count: bodies.count)
            var next = 0
            func start(_ index: Int) {
                group.addTask { (index, try await post(path, body: bodies[index].encoded(using: allocator), call: call)) }
            }
            while next < min(width, bodies.count) {
                start(next)
                next += 1
            }
            for try await (index, answer) in group {
                answers[index] = answer
                if next < bodies.count {
                    start(next)
                    next += 1
                }
            }
            return answers.compactMap { $0 }
        }
        var vectors: [JSON] = []
        var tokens = 0
        for answer in answers {
            guard let parsed = try? JSON.parse(answer.body), parsed.isObject else { throw Self.notJSON }
            vectors += try family.vectors(in: parsed)
            // Each count is bounded (`tokenCount`) and there are at most a few thousand calls.
            tokens += answer.headers.first(name: "x-amzn-bedrock-input-token-count").flatMap { Int($0) }.map(Usage.bounded)
                ?? parsed["inputTextTokenCount"]?.tokenCount ?? 0
        }
        let usage = Usage(inputTokens: tokens, outputTokens: 0)
        request.context.usage = usage
        let answer = BedrockEmbeddings.response(vectors, model: call.upstreamModel, base64: json["encoding_format"]?.string == "base64",
                                                usage: usage)
        return GatewayResponse(status: .ok, headers: ["content-type": "application/json"], body: .whole(answer.encoded(using: allocator)))
    }

    // MARK: Health

    /// A signed Converse call for a model that does not exist: Bedrock checks the signature
    /// before the model, so a 400 or 404 proves the endpoint is there and the credentials are
    /// accepted, while a 401 or 403 says they are not. Nothing is generated, nothing billed.
    func probe() async -> ProbeResult {
        do {
            let body = ByteBuffer(string: #"{"messages":[]}"#)
            var request = signed(BedrockEndpoint.modelPath("sluice-health-probe", "converse"), body: body, call: nil, accept: "application/json")
            request.timeouts = UpstreamTimeouts(connect: .seconds(2), firstByte: .seconds(5), total: .seconds(5))
            request.headers.add(name: "user-agent", value: "sluice-health-probe")  // tells probes apart in providers' logs
            let response = try await upstream.send(request)
            switch response.status {
            case 401, 403: return ProbeResult(isUp: false, detail: "HTTP \(response.status): credentials refused")
            case ..<500: return ProbeResult(isUp: true, detail: "HTTP \(response.status): credentials accepted")
            default: return ProbeResult(isUp: false, detail: "HTTP \(response.status)")
            }
        } catch {
            return ProbeResult(isUp: false, detail: String(describing: error))
        }
    }

    // MARK: Transport

    static let notJSON = GatewayError(.badGateway, type: "upstream_error", "the provider's answer is not JSON", code: "upstream_invalid")

    /// A POST of `body` to `path`, signed now. The admin's headers are signed too; the call's
    /// (trace context) are added after signing, which AWS allows for names outside `x-amz-`.
    @inline(never)
    private func signed(_ path: String, body: ByteBuffer, call: ProviderCall?, accept: String) -> UpstreamRequest {
        var toSign: [(name: String, value: String)] = [("host", settings.endpoint.host), ("content-type", "application/json")]
        for (name, value) in settings.headers {
            toSign.removeAll { $0.name.lowercased() == name.lowercased() }
            toSign.append((name, value))
        }
        let signature = settings.signer.sign(method: "POST", path: settings.endpoint.pathPrefix + path, headers: toSign, body: body, date: Date())
        var headers = HTTPHeaders(toSign.map { ($0.name, $0.value) } + signature.headers.map { ($0.name, $0.value) })
        headers.add(name: "accept", value: accept)
        if let call { headers.addCallHeaders(call.headers) }
        let timeout = min(settings.timeout, call?.timeout ?? settings.timeout)
        return UpstreamRequest(url: settings.endpoint.baseURL + path, headers: headers, body: body,
                               timeouts: UpstreamTimeouts(connect: settings.connectTimeout, firstByte: timeout,
                                                          total: call?.request.stream == true ? nil : timeout),
                               maxResponseBytes: settings.limits.maxResponseBytes, caFile: settings.caFile, transport: settings.transport)
    }

    @inline(never)
    private func post(_ path: String, body: ByteBuffer, call: ProviderCall) async throws -> UpstreamResponse {
        let response = try await upstream.send(signed(path, body: body, call: call, accept: "application/json"))
        guard (200..<300).contains(response.status) else {
            throw BedrockFailure.error(status: response.status, headers: response.headers, body: response.body)
        }
        return response
    }
}
