import Atomics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Turns HTTP requests into `GatewayRequest`s: picks the operation from the path, parses the JSON
/// body once, checks the few fields every request must have, assigns the request id, runs the
/// pipeline, and renders every failure in the front door's own error shape.
struct FrontDoor: Sendable {
    let logger: Logger
    /// Whether the gateway is draining: a stream cancelled then ends with a shutdown error event.
    let isDraining: @Sendable () -> Bool
    let allocator = ByteBufferAllocator()

    struct Endpoint {
        var operation: APIOperation
        var dialect: APIDialect
        var method: HTTPMethod
    }

    /// Searched in order, on the path's bytes: a `Substring`-keyed dictionary hashed each path
    /// (normalising it as Unicode) twice a request, which cost more than comparing six.
    private static let endpoints: [(path: StaticString, endpoint: Endpoint)] = [
        ("/v1/chat/completions", Endpoint(operation: .chatCompletions, dialect: .openAI, method: .POST)),
        ("/v1/embeddings", Endpoint(operation: .embeddings, dialect: .openAI, method: .POST)),
        ("/v1/moderations", Endpoint(operation: .moderations, dialect: .openAI, method: .POST)),
        ("/v1/models", Endpoint(operation: .listModels, dialect: .openAI, method: .GET)),
        ("/v1/messages", Endpoint(operation: .messages, dialect: .anthropic, method: .POST)),
        ("/v1/responses", Endpoint(operation: .responses, dialect: .openAI, method: .POST)),
    ]

    /// `/v1/responses/{id}` (GET, DELETE) and `/v1/responses/{id}/input_items` (GET): stored
    /// responses, served by a pipeline plugin (`response-store`) for the key that created them.
    private static func storedResponseEndpoint(_ path: Substring, method: HTTPMethod) -> Endpoint? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4 || parts.count == 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "responses", !parts[3].isEmpty else {
            return nil
        }
        switch (parts.count, method) {
        case (4, .DELETE): return Endpoint(operation: .deleteStoredResponse, dialect: .openAI, method: .DELETE)
        case (4, _): return Endpoint(operation: .storedResponse, dialect: .openAI, method: .GET)
        case (5, _) where parts[4] == "input_items": return Endpoint(operation: .storedResponseInputItems, dialect: .openAI, method: .GET)
        default: return nil
        }
    }

    static func endpoint(_ path: Substring, method: HTTPMethod) -> Endpoint? {
        var bytes = path
        let known = bytes.withUTF8 { bytes in endpoints.first { ByteWord.equal(UnsafeRawBufferPointer(bytes), $0.path) }?.endpoint }
        return known ?? storedResponseEndpoint(path, method: method)
    }

    /// Reaches the authenticators' verdicts from the head alone, on the event loop, as the head
    /// arrives: a request they refuse is answered without reading its body.
    static func screen(_ head: HTTPRequestHead, generation: GatewayGeneration?) -> RequestScreening {
        let path = path(of: head.uri)
        guard let generation, endpoint(path, method: head.method) != nil || MCPFrontDoor.serves(path) else {
            return RequestScreening(generation: generation, verdicts: [])
        }
        // In pipeline order, up to the first that does not identify the caller: the rest are
        // asked later, if the request gets that far.
        var verdicts: [AuthVerdict] = []
        for authenticator in generation.pipeline.authenticators {
            let verdict = authenticator.screen(head.headers)
            verdicts.append(verdict)
            guard case .identified = verdict else { break }
        }
        return RequestScreening(generation: generation, verdicts: verdicts)
    }

    func respond(to head: HTTPRequestHead, body: ByteBuffer, screening: RequestScreening, isReady: Bool) async -> GatewayResponse {
        let requestID = RequestID.fromClient(head.headers.first(name: "x-request-id")) ?? RequestID.make()
        let path = Self.path(of: head.uri)
        let endpoint = Self.endpoint(path, method: head.method)
        let lease = screening.generation.map(GenerationLease.init)
        do {
            let response = try await route(head, path: path, endpoint: endpoint, body: body, requestID: requestID,
                                           screening: screening, isReady: isReady)
            return finish(response, requestID: requestID, path: path, endpoint: endpoint, lease: lease)
        } catch {
            return finish(failed(error, requestID: requestID, path: path, endpoint: endpoint), requestID: requestID, path: path,
                          endpoint: endpoint, lease: lease)
        }
    }

    @inline(never)
    private func failed(_ error: any Error, requestID: String, path: Substring, endpoint: Endpoint?) -> GatewayResponse {
        let gatewayError = GatewayError(error)
        if gatewayError.status == .internalServerError {
            logger.error("request failed", metadata: ["request_id": .string(requestID), "error": .string(String(describing: error))])
        }
        return gatewayError.response(for: Self.dialect(path, endpoint: endpoint), allocator: allocator)
    }

    private static func dialect(_ path: Substring, endpoint: Endpoint?) -> APIDialect {
        endpoint?.dialect ?? (MCPFrontDoor.serves(path) ? .mcp : .openAI)
    }

    /// The answer as it leaves: a stream's failure after its head becomes an event in the API's
    /// shape, the generation is let go when the answer ends, and the request is named.
    @inline(never)
    private func finish(_ response: GatewayResponse, requestID: String, path: Substring, endpoint: Endpoint?,
                        lease: GenerationLease?) -> GatewayResponse {
        var response = response
        if case .events(var events) = response.body {
            let logger = logger, isDraining = isDraining, dialect = Self.dialect(path, endpoint: endpoint)
            // A Responses stream numbers its events; an error event takes the next number.
            let eventsSent = endpoint?.operation == .responses ? ManagedAtomic(0) : nil
            if let eventsSent { events = events.observing { _ in eventsSent.wrappingIncrement(ordering: .relaxed) } }
            response.body = .events(events.catchingErrors { error in
                var gatewayError = GatewayError(error)
                if error is CancellationError || Task.isCancelled {
                    guard isDraining() else { return nil }  // the client left: nobody to tell
                    gatewayError = GatewayError(.serviceUnavailable, type: "server_error",
                                                "the gateway is shutting down; retry the request", code: "shutting_down")
                }
                logger.warning("stream failed after it started",
                               metadata: ["request_id": .string(requestID), "error": .string(gatewayError.message)])
                if let eventsSent { return gatewayError.responsesStreamEvent(sequenceNumber: eventsSent.load(ordering: .relaxed)) }
                return gatewayError.streamEvent(for: dialect)
            }.observing({ _ in }, finished: { _ in lease?.release() }))
        } else {
            lease?.release()
        }
        response.headers.replaceOrAdd(["x-request-id": requestID, "x-sluice-provider": response.provider ?? "none"])
        return response
    }

    func bodyTooLarge(_ head: HTTPRequestHead, limit: Int) -> GatewayResponse {
        let path = Self.path(of: head.uri)
        let error = GatewayError(.payloadTooLarge, type: "invalid_request_error",
                                 "the request body is larger than this gateway accepts (\(limit) bytes)", code: "request_too_large")
        return refusal(error, dialect: Self.endpoint(path, method: head.method)?.dialect ?? .openAI,
                       requestID: RequestID.fromClient(head.headers.first(name: "x-request-id")) ?? RequestID.make())
    }

    /// No request line could be read, so no path names a dialect: the answer is OpenAI-shaped.
    func malformedRequest(_ reason: String) -> GatewayResponse {
        let error = GatewayError(.badRequest, type: "invalid_request_error",
                                 "the request is not valid HTTP/1.1 (\(reason))", code: "malformed_http_request")
        return refusal(error, dialect: .openAI, requestID: RequestID.make())
    }

    /// No request was read: the connection itself is one too many.
    func tooManyConnections() -> GatewayResponse {
        let error = GatewayError(.serviceUnavailable, type: "server_error",
                                 "the gateway has as many connections open as it accepts; retry shortly", code: "too_many_connections")
        return refusal(error, dialect: .openAI, requestID: RequestID.make())
    }

    /// An answer the server gives before any request reaches the pipeline.
    private func refusal(_ error: GatewayError, dialect: APIDialect, requestID: String) -> GatewayResponse {
        var response = error.response(for: dialect, allocator: allocator)
        response.headers.replaceOrAdd(name: "x-request-id", value: requestID)
        response.headers.replaceOrAdd(name: "x-sluice-provider", value: "none")
        return response
    }

    /// Where a request goes, found without waiting.
    private enum Destination {
        case answered(GatewayResponse)
        case plugin(PluginRoute, GatewayRequest)
        case mcp(MCPFrontDoor)
        case api(Endpoint, GatewayGeneration)
    }

    // The async functions a request passes through keep their frames until it is answered (a
    // provider can take minutes), and each value an `await` could see takes room in them: what
    // is decided without waiting is decided in synchronous functions (`destination`), and each
    // way on waits in a function of its own (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    @inline(never)
    private func route(_ head: HTTPRequestHead, path: Substring, endpoint: Endpoint?, body: ByteBuffer, requestID: String,
                       screening: RequestScreening, isReady: Bool) async throws -> GatewayResponse {
        switch try destination(head, path: path, endpoint: endpoint, body: body, requestID: requestID, screening: screening, isReady: isReady) {
        case .answered(let response): return response
        case .plugin(let route, let request): return try await route.handler(request)
        case .mcp(let frontDoor): return try await frontDoor.respond(head, path: path, body: body, requestID: requestID, screening: screening)
        case .api(let endpoint, let generation):
            return try await call(endpoint, head: head, body: body, requestID: requestID, screening: screening, generation: generation)
        }
    }

    @inline(never)
    private func destination(_ head: HTTPRequestHead, path: Substring, endpoint: Endpoint?, body: ByteBuffer, requestID: String,
                             screening: RequestScreening, isReady: Bool) throws -> Destination {
        let generation = screening.generation
        switch (head.method, path) {
        case (.GET, "/health"), (.HEAD, "/health"):
            return .answered(.json(["status": "ok"], allocator: allocator))
        case (.GET, "/ready"), (.HEAD, "/ready"):
            let ready = isReady && generation != nil
            var report: JSON = ["status": ready ? "ready" : "not ready"]
            if let generation, Self.isVerbose(head.uri) {
                try Self.checkOperator(head.headers, keys: generation.adminKeys)
                report["providers"] = generation.health.report
            }
            return .answered(.json(report, status: ready ? .ok : .serviceUnavailable, allocator: allocator))
        default:
            break
        }
        guard let generation else {
            throw GatewayError(.serviceUnavailable, type: "server_error", "the gateway is starting", code: "not_ready")
        }
        if let route = generation.route(method: head.method.rawValue, path: path) {
            if route.access == .operator { try Self.checkOperator(head.headers, keys: generation.adminKeys) }
            // The manifest's keys, so that a route checking credentials itself can tell a client key from an unknown one.
            let context = RequestContext(requestID: requestID, logger: logger, allocator: allocator, authentication: [],
                                         credentials: generation.credentials)
            return .plugin(route, GatewayRequest(
                operation: .other, dialect: .openAI, method: head.method, uri: head.uri, headers: head.headers,
                body: RequestBody(opaque: body), model: "", stream: false, context: context))
        }
        if MCPFrontDoor.serves(path) {
            return .mcp(MCPFrontDoor(frontDoor: self, generation: generation))
        }
        guard let endpoint else {
            throw GatewayError.notFound("unknown path \(path); this gateway serves /v1/chat/completions, /v1/embeddings, /v1/moderations, /v1/models, /v1/messages and /v1/responses",
                                        code: "unknown_url")
        }
        guard head.method == endpoint.method else {
            throw GatewayError(.methodNotAllowed, type: "invalid_request_error", "\(path) takes \(endpoint.method.rawValue), not \(head.method.rawValue)")
        }
        return .api(endpoint, generation)
    }

    /// A call to the API: who is calling is settled before the body is parsed; a refused request
    /// goes down the pipeline without it, to the authenticator that delivers the refusal.
    @inline(never)
    private func call(_ endpoint: Endpoint, head: HTTPRequestHead, body: ByteBuffer, requestID: String, screening: RequestScreening,
                      generation: GatewayGeneration) async throws -> GatewayResponse {
        let verdicts = await authenticate(head.headers, screening: screening, authenticators: generation.pipeline.authenticators)
        var request = request(endpoint, head: head, requestID: requestID, verdicts: verdicts, generation: generation)
        if endpoint.method == .POST, verdicts.allSatisfy({ if case .success = $0 { true } else { false } }) {
            let scanned = try await Self.scanBody(body, memoryBudget: generation.manifest.server.maxJSONMemoryBytes)
            try Self.read(scanned, into: &request, endpoint: endpoint)
        }
        return try await generation.pipeline.handle(request)
    }

    @inline(never)
    private func request(_ endpoint: Endpoint, head: HTTPRequestHead, requestID: String, verdicts: [Result<CallerIdentity, GatewayError>],
                         generation: GatewayGeneration) -> GatewayRequest {
        let context = RequestContext(requestID: requestID, logger: logger, allocator: allocator, authentication: verdicts,
                                     credentials: generation.credentials)
        return GatewayRequest(operation: endpoint.operation, dialect: endpoint.dialect, method: head.method, uri: head.uri,
                              headers: head.headers, body: .empty, model: "", stream: false, context: context)
    }

    @inline(never)
    private static func read(_ scanned: RequestBody, into request: inout GatewayRequest, endpoint: Endpoint) throws {
        let fields = try RequestFields(scanned, operation: endpoint.operation, dialect: endpoint.dialect)
        request.body = scanned
        request.model = fields.model
        request.stream = fields.stream
    }

    /// The verdict of every authenticator, in pipeline order: those `screen` left undecided are
    /// verified now. After a refusal the rest are not asked (the pipeline stops there).
    func authenticate(_ headers: HTTPHeaders, screening: RequestScreening,
                              authenticators: [any Authenticator]) async -> [Result<CallerIdentity, GatewayError>] {
        var verdicts: [Result<CallerIdentity, GatewayError>] = []
        verdicts.reserveCapacity(authenticators.count)
        for (index, authenticator) in authenticators.enumerated() {
            let verdict: Result<CallerIdentity, GatewayError>
            switch index < screening.verdicts.count ? screening.verdicts[index] : authenticator.screen(headers) {
            case .identified(let identity): verdict = .success(identity)
            case .refused(let error): verdict = .failure(error)
            case .undecided:
                do { verdict = .success(try await authenticator.verify(headers)) } catch { verdict = .failure(GatewayError(error)) }
            }
            verdicts.append(verdict)
            if case .failure = verdict { break }
        }
        return verdicts
    }

    /// An operator route (`/metrics`, `/ready?verbose=1`) needs one of `server.admin_keys`, when there are any.
    private static func checkOperator(_ headers: HTTPHeaders, keys: [KeyDigest]) throws {
        guard !keys.isEmpty else { return }
        guard let presented = headers.bearerToken else {
            throw GatewayError(.unauthorized, type: "authentication_error", "This route needs an admin key: send `Authorization: Bearer KEY`.",
                               code: "missing_admin_key")
        }
        guard KeyDigest.match(presented, in: keys) != nil else {
            throw GatewayError(.unauthorized, type: "authentication_error", "Incorrect admin key provided.", code: "invalid_admin_key")
        }
    }

    static func path(of uri: String) -> Substring {
        let utf8 = uri.utf8
        // Searched on the contiguous bytes: the UTF-8 view's own search steps through its indices.
        guard let query = utf8.withContiguousStorageIfAvailable({ $0.firstIndex(of: UInt8(ascii: "?")) }) else {
            return uri[..<(utf8.firstIndex(of: UInt8(ascii: "?")) ?? uri.endIndex)]
        }
        return uri[..<(query.map { utf8.index(utf8.startIndex, offsetBy: $0) } ?? uri.endIndex)]
    }

    /// `?verbose=1` (or `true`) on the query string.
    static func isVerbose(_ uri: String) -> Bool {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return false }
        return query.split(separator: "&").contains { $0 == "verbose=1" || $0 == "verbose=true" || $0 == "verbose" }
    }

    /// Bodies larger than this are scanned on NIO's thread pool, so that a big body never holds
    /// the event loop its connection shares with many others.
    static let offLoopScanBytes = 256 * 1024

    /// Checks a body is a JSON object (without building its tree) and indexes its members.
    static func scanBody(_ body: ByteBuffer, memoryBudget: Int) async throws -> RequestBody {
        guard body.readableBytes > 0 else {
            throw GatewayError.invalidRequest("the request body is empty; expected a JSON object")
        }
        let scanned: Result<JSONScan, JSONParseError>
        if body.readableBytes > offLoopScanBytes {
            scanned = try await NIOThreadPool.singleton.runIfActive { Result { () throws(JSONParseError) in try JSONScanner.scan(body, memoryBudget: memoryBudget) } }
        } else {
            scanned = Result { () throws(JSONParseError) in try JSONScanner.scan(body, memoryBudget: memoryBudget) }
        }
        switch scanned {
        case .success(let scan):
            guard scan.kind == .object else { throw GatewayError.invalidRequest("the request body must be a JSON object") }
            return RequestBody(raw: body, scan: scan)
        case .failure(let error) where error.exceededBudget:
            throw GatewayError(.payloadTooLarge, type: "invalid_request_error",
                               "the request body's JSON needs more memory than this gateway allows (\(memoryBudget) bytes); send fewer or smaller values",
                               code: "request_too_large")
        case .failure(let error):
            throw GatewayError.invalidRequest("the request body is not valid JSON (\(error))")
        }
    }
}
