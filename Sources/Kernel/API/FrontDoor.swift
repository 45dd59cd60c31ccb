import Logging
import NIOCore
import NIOHTTP1

/// Turns HTTP requests into `GatewayRequest`s: picks the operation from the path, parses the JSON
/// body once, checks the few fields every request must have, assigns the request id, runs the
/// pipeline, and renders every failure in the front door's own error shape.
struct FrontDoor: Sendable {
    let logger: Logger
    /// Whether the gateway is draining: a stream cancelled then ends with a shutdown error event.
    let isDraining: @Sendable () -> Bool
    let allocator = ByteBufferAllocator()

    private struct Endpoint {
        var operation: APIOperation
        var dialect: APIDialect
        var method: HTTPMethod
    }

    private static let endpoints: [Substring: Endpoint] = [
        "/v1/chat/completions": Endpoint(operation: .chatCompletions, dialect: .openAI, method: .POST),
        "/v1/embeddings": Endpoint(operation: .embeddings, dialect: .openAI, method: .POST),
        "/v1/models": Endpoint(operation: .listModels, dialect: .openAI, method: .GET),
        "/v1/messages": Endpoint(operation: .messages, dialect: .anthropic, method: .POST),
    ]

    func respond(to head: HTTPRequestHead, body: ByteBuffer, generation: GatewayGeneration?, isReady: Bool) async -> GatewayResponse {
        let requestID = RequestID.fromClient(head.headers.first(name: "x-request-id")) ?? RequestID.make()
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let endpoint = Self.endpoints[path]
        let dialect = endpoint?.dialect ?? .openAI
        var response: GatewayResponse
        let lease = generation.map(GenerationLease.init)
        do {
            response = try await route(head, path: path, endpoint: endpoint, body: body, requestID: requestID,
                                       generation: generation, isReady: isReady)
        } catch {
            let gatewayError = GatewayError(error)
            if gatewayError.status == .internalServerError {
                logger.error("request failed", metadata: ["request_id": .string(requestID), "error": .string(String(describing: error))])
            }
            response = gatewayError.response(for: dialect, allocator: allocator)
        }
        if case .events(let events) = response.body {
            let logger = logger, isDraining = isDraining
            response.body = .events(events.catchingErrors { error in
                var gatewayError = GatewayError(error)
                if error is CancellationError || Task.isCancelled {
                    guard isDraining() else { return nil }  // the client left: nobody to tell
                    gatewayError = GatewayError(.serviceUnavailable, type: "server_error",
                                                "the gateway is shutting down; retry the request", code: "shutting_down")
                }
                logger.warning("stream failed after it started",
                               metadata: ["request_id": .string(requestID), "error": .string(gatewayError.message)])
                return gatewayError.streamEvent(for: dialect)
            }.observing({ _ in }, finished: { _ in lease?.release() }))
        } else {
            lease?.release()
        }
        response.headers.replaceOrAdd(name: "x-request-id", value: requestID)
        response.headers.replaceOrAdd(name: "x-sluice-provider", value: response.provider ?? "none")
        return response
    }

    func bodyTooLarge(_ head: HTTPRequestHead, limit: Int) -> GatewayResponse {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let error = GatewayError(.payloadTooLarge, type: "invalid_request_error",
                                 "the request body is larger than this gateway accepts (\(limit) bytes)", code: "request_too_large")
        return refusal(error, dialect: Self.endpoints[path]?.dialect ?? .openAI,
                       requestID: RequestID.fromClient(head.headers.first(name: "x-request-id")) ?? RequestID.make())
    }

    /// No request line could be read, so no path names a dialect: the answer is OpenAI-shaped.
    func malformedRequest(_ reason: String) -> GatewayResponse {
        let error = GatewayError(.badRequest, type: "invalid_request_error",
                                 "the request is not valid HTTP/1.1 (\(reason))", code: "malformed_http_request")
        return refusal(error, dialect: .openAI, requestID: RequestID.make())
    }

    /// An answer the server gives before any request reaches the pipeline.
    private func refusal(_ error: GatewayError, dialect: APIDialect, requestID: String) -> GatewayResponse {
        var response = error.response(for: dialect, allocator: allocator)
        response.headers.replaceOrAdd(name: "x-request-id", value: requestID)
        response.headers.replaceOrAdd(name: "x-sluice-provider", value: "none")
        return response
    }

    private func route(_ head: HTTPRequestHead, path: Substring, endpoint: Endpoint?, body: ByteBuffer, requestID: String,
                       generation: GatewayGeneration?, isReady: Bool) async throws -> GatewayResponse {
        switch (head.method, path) {
        case (.GET, "/health"), (.HEAD, "/health"):
            return .json(["status": "ok"], allocator: allocator)
        case (.GET, "/ready"), (.HEAD, "/ready"):
            let ready = isReady && generation != nil
            var report: JSON = ["status": ready ? "ready" : "not ready"]
            if let generation, Self.isVerbose(head.uri) { report["providers"] = generation.health.report }
            return .json(report, status: ready ? .ok : .serviceUnavailable, allocator: allocator)
        default:
            break
        }
        guard let generation else {
            throw GatewayError(.serviceUnavailable, type: "server_error", "the gateway is starting", code: "not_ready")
        }
        let context = RequestContext(requestID: requestID, logger: logger, allocator: allocator)
        if let route = generation.routes["\(head.method.rawValue) \(path)"] {
            return try await route.handler(GatewayRequest(
                operation: .other, dialect: .openAI, method: head.method, uri: head.uri, headers: head.headers,
                body: RequestBody(raw: body, json: .null), model: "", stream: false, context: context))
        }
        guard let endpoint else {
            throw GatewayError.notFound("unknown path \(path); this gateway serves /v1/chat/completions, /v1/embeddings, /v1/models and /v1/messages",
                                        code: "unknown_url")
        }
        guard head.method == endpoint.method else {
            throw GatewayError(.methodNotAllowed, type: "invalid_request_error", "\(path) takes \(endpoint.method.rawValue), not \(head.method.rawValue)")
        }
        var request = GatewayRequest(operation: endpoint.operation, dialect: endpoint.dialect, method: head.method, uri: head.uri,
                                     headers: head.headers, body: .empty, model: "", stream: false, context: context)
        if endpoint.method == .POST {
            let json = try Self.parseBody(body)
            try Self.checkShape(json, for: endpoint.operation)
            request.body = RequestBody(raw: body, json: json)
            request.model = json["model"]?.string ?? ""
            request.stream = json["stream"]?.bool ?? false
        }
        return try await generation.pipeline.handle(request)
    }

    /// `?verbose=1` (or `true`) on the query string.
    static func isVerbose(_ uri: String) -> Bool {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return false }
        return query.split(separator: "&").contains { $0 == "verbose=1" || $0 == "verbose=true" || $0 == "verbose" }
    }

    static func parseBody(_ body: ByteBuffer) throws -> JSON {
        guard body.readableBytes > 0 else {
            throw GatewayError.invalidRequest("the request body is empty; expected a JSON object")
        }
        let json: JSON
        do {
            json = try JSON.parse(body)
        } catch {
            throw GatewayError.invalidRequest("the request body is not valid JSON (\(error))")
        }
        guard json.isObject else { throw GatewayError.invalidRequest("the request body must be a JSON object") }
        return json
    }

    /// The fields without which no plugin or provider could make sense of a request. Full
    /// validation (ranges, roles, limits) is the `validation` plugin's job.
    static func checkShape(_ json: JSON, for operation: APIOperation) throws {
        guard let model = json["model"], let name = model.string, !name.isEmpty else {
            throw GatewayError.invalidRequest(json["model"] == nil ? "you must provide a model parameter" : "model must be a non-empty string",
                                              param: "model")
        }
        if let stream = json["stream"], !stream.isNull, stream.bool == nil {
            throw GatewayError.invalidRequest("stream must be true or false", param: "stream")
        }
        switch operation {
        case .chatCompletions, .messages:
            guard let messages = json["messages"] else {
                throw GatewayError.invalidRequest("missing required parameter: messages", param: "messages")
            }
            guard messages.isArray, messages.count > 0 else {
                throw GatewayError.invalidRequest("messages must be a non-empty array", param: "messages")
            }
            if operation == .messages, json["max_tokens"]?.int == nil {
                throw GatewayError.invalidRequest("max_tokens: a positive integer is required", param: "max_tokens")
            }
        case .embeddings:
            guard let input = json["input"], !input.isNull else {
                throw GatewayError.invalidRequest("missing required parameter: input", param: "input")
            }
        case .listModels, .other:
            break
        }
    }
}
