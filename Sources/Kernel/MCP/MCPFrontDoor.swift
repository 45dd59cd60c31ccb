import NIOCore
import NIOHTTP1

/// The HTTP side of `/mcp` and `/mcp/{server}` (MCP's Streamable HTTP transport): reads the
/// JSON-RPC message, names the call for the plugins that report on it, and runs the pipeline,
/// whose end is the `MCPGateway`. Failures come back as JSON-RPC errors: a refusal of a call
/// (rate limit, policy) with HTTP 200, so that a client sees the error of that call and goes on;
/// a problem of the transport itself (no credentials, no session) with its HTTP status.
struct MCPFrontDoor {
    let frontDoor: FrontDoor
    let generation: GatewayGeneration

    static func serves(_ path: Substring) -> Bool { path == "/mcp" || path.hasPrefix("/mcp/") }

    // The work around the waits is in synchronous functions: this frame lives as long as a tool
    // call waits for its server (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    @inline(never)
    func respond(_ head: HTTPRequestHead, path: Substring, body: ByteBuffer, requestID: String, screening: RequestScreening) async throws -> GatewayResponse {
        let (gateway, pipeline, scope) = try destination(head, path: path)
        let verdicts = await frontDoor.authenticate(head.headers, screening: screening, authenticators: pipeline.authenticators)
        let request: GatewayRequest
        switch call(head, body: body, requestID: requestID, verdicts: verdicts, scope: scope, gateway: gateway) {
        case .answered(let response): return response
        case .request(let call): request = call
        }
        do {
            return try await pipeline.handle(request)
        } catch {
            return failed(error, message: request.context[MCPExchange.self]?.message)
        }
    }

    /// The gateway and pipeline that serve the path, and the one server it names, if any.
    @inline(never)
    private func destination(_ head: HTTPRequestHead, path: Substring) throws -> (MCPGateway, Pipeline, scope: String?) {
        guard let gateway = generation.mcp, let pipeline = generation.mcpPipeline else {
            throw GatewayError.notFound("this gateway serves no MCP servers (mcp_servers is empty)", code: "unknown_url")
        }
        let scope: String? = path == "/mcp" ? nil : String(path.dropFirst("/mcp/".count))
        if let scope, gateway.byName[scope] == nil {
            throw GatewayError.notFound("no MCP server is named `\(scope)`", code: "unknown_mcp_server")
        }
        guard [.POST, .GET, .DELETE].contains(head.method) else {
            throw GatewayError(.methodNotAllowed, type: "invalid_request_error", "\(path) takes POST, GET and DELETE", headers: ["allow": "POST, GET, DELETE"])
        }
        return (gateway, pipeline, scope)
    }

    /// The request that goes down the pipeline, or the answer to a body that is not one message.
    private enum Call {
        case request(GatewayRequest)
        case answered(GatewayResponse)
    }

    @inline(never)
    private func call(_ head: HTTPRequestHead, body: ByteBuffer, requestID: String, verdicts: [Result<CallerIdentity, GatewayError>],
                      scope: String?, gateway: MCPGateway) -> Call {
        let context = RequestContext(requestID: requestID, logger: frontDoor.logger, allocator: frontDoor.allocator, authentication: verdicts,
                                     credentials: generation.credentials)
        let admitted = verdicts.allSatisfy { if case .success = $0 { true } else { false } }
        var message: JSON?
        var calls = MCPCallFacts(method: head.method.rawValue, server: scope)
        if head.method == .POST, admitted {
            let parsed: JSON
            do {
                guard body.readableBytes > 0 else { throw JSONParseError(line: 0, column: 0, message: "empty body") }
                parsed = try JSON.parseRequest(body, memoryBudget: generation.manifest.server.maxJSONMemoryBytes)
            } catch {
                return .answered(Self.transportError(JSONRPC.error(id: nil, code: JSONRPC.parseError, "the body is not JSON"), status: .badRequest))
            }
            if parsed.isArray {
                // Batches were in 2025-03-26 only and no current client sends them.
                return .answered(Self.transportError(JSONRPC.error(id: nil, code: JSONRPC.invalidRequest, "JSON-RPC batches are not supported; send one message per POST"),
                                                     status: .badRequest))
            }
            message = parsed
            if let method = parsed["method"]?.string { calls.method = method } else { calls.method = "response" }
            if calls.method == "tools/call" || calls.method == "prompts/get" {
                let name = parsed["params"]?["name"]?.string
                calls.name = name
                if scope == nil, let name, let split = gateway.names.split(name), gateway.byName[split.server] != nil { calls.server = split.server }
            }
        }
        context.recordFacts { $0.mcp = calls }
        context[MCPExchange.self] = MCPExchange.Exchange(scope: scope, message: message, sessionID: head.headers.first(name: "mcp-session-id"),
                                                         isDraining: frontDoor.isDraining)
        return .request(GatewayRequest(operation: .mcp, dialect: .mcp, method: head.method, uri: head.uri, headers: head.headers,
                                       body: RequestBody(raw: body, json: message ?? .null), model: "", stream: false, context: context))
    }

    /// A failure as a JSON-RPC error: the transport's own problems keep their status; a refused
    /// call is that call's error.
    @inline(never)
    private func failed(_ error: any Error, message: JSON?) -> GatewayResponse {
        let error = GatewayError(error)
        let id = message?["id"]
        var answer = error.body(for: .mcp)
        answer["id"] = id ?? .null
        let keepsStatus = [400, 401, 404, 405, 406, 413].contains(error.status.code) || id == nil
        var response = GatewayResponse.json(answer, status: keepsStatus ? error.status : .ok, allocator: frontDoor.allocator)
        response.headers.add(contentsOf: error.headers)
        if error.status == .unauthorized { response.headers.replaceOrAdd(name: "www-authenticate", value: "Bearer") }
        return response
    }

    static func transportError(_ body: JSON, status: HTTPResponseStatus) -> GatewayResponse {
        .json(body, status: status)
    }
}
