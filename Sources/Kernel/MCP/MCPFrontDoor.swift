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

    func respond(_ head: HTTPRequestHead, path: Substring, body: ByteBuffer, requestID: String, screening: RequestScreening) async throws -> GatewayResponse {
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
        let verdicts = await frontDoor.authenticate(head.headers, screening: screening, authenticators: pipeline.authenticators)
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
                return Self.transportError(JSONRPC.error(id: nil, code: JSONRPC.parseError, "the body is not JSON"), status: .badRequest)
            }
            if parsed.isArray {
                // Batches were in 2025-03-26 only and no current client sends them.
                return Self.transportError(JSONRPC.error(id: nil, code: JSONRPC.invalidRequest, "JSON-RPC batches are not supported; send one message per POST"),
                                           status: .badRequest)
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
        let isDraining = frontDoor.isDraining
        context[MCPExchange.self] = MCPExchange.Exchange(scope: scope, message: message, sessionID: head.headers.first(name: "mcp-session-id"),
                                                         isDraining: isDraining)
        let request = GatewayRequest(operation: .mcp, dialect: .mcp, method: head.method, uri: head.uri, headers: head.headers,
                                     body: RequestBody(raw: body, json: message ?? .null), model: "", stream: false, context: context)
        do {
            return try await pipeline.handle(request)
        } catch {
            let error = GatewayError(error)
            let id = message?["id"]
            var answer = error.body(for: .mcp)
            answer["id"] = id ?? .null
            // The transport's own problems keep their status; a refused call is that call's error.
            let keepsStatus = [400, 401, 404, 405, 406, 413].contains(error.status.code) || id == nil
            var response = GatewayResponse.json(answer, status: keepsStatus ? error.status : .ok, allocator: frontDoor.allocator)
            response.headers.add(contentsOf: error.headers)
            if error.status == .unauthorized { response.headers.replaceOrAdd(name: "www-authenticate", value: "Bearer") }
            return response
        }
    }

    static func transportError(_ body: JSON, status: HTTPResponseStatus) -> GatewayResponse {
        .json(body, status: status)
    }
}
