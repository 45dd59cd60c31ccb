import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The `/mcp` endpoint's end of the pipeline: one MCP server made of the manifest's servers. It
/// opens sessions (one upstream session per HTTP server, sealed into the client's session id),
/// answers the list methods with every server's items under qualified names, sends each call to
/// the server it names, and applies the caller's tool allowlist. It forwards JSON-RPC as it is
/// (the Kernel's `JSON` and `UpstreamClient`), changing only names, ids and progress tokens.
public final class MCPGateway: Sendable {
    static let version = "1.0"
    let servers: [any MCPServerConnection]
    let byName: [String: any MCPServerConnection]
    let seal: MCPSessionSeal
    let names: MCPNames
    let logger: Logger
    /// Names each server listed last (tools and prompts): only those become metric labels.
    let listed = NIOLockedValueBox<[String: Set<String>]>([:])
    /// Which server listed a resource URI, for `resources/read`.
    let resourceOwners = NIOLockedValueBox<[String: String]>([:])
    /// Set when the generation is retired or shut down: open notification streams end.
    let isClosing = ManagedAtomic(false)

    public init(_ manifest: MCPManifest, upstream: UpstreamClient, environment: [String: String], logger: Logger) {
        var servers: [any MCPServerConnection] = []
        for server in manifest.servers {
            if server.settings.url != nil {
                servers.append(MCPHTTPServer(name: server.name, settings: server.settings, client: upstream, logger: logger))
            } else {
                servers.append(MCPStdioServer(name: server.name, settings: server.settings, environment: environment, logger: logger))
            }
        }
        self.servers = servers
        byName = Dictionary(uniqueKeysWithValues: servers.map { ($0.name, $0) })
        if let key = manifest.sessionKey {
            seal = MCPSessionSeal(secret: key)
        } else {
            seal = MCPSessionSeal()
            logger.warning("mcp_session_key is not set: MCP sessions are sealed with a key of this process and end with it")
        }
        names = MCPNames(separator: manifest.separator)
        self.logger = logger
    }

    /// Starts the stdio servers (each tries once now and keeps trying in the background).
    public func start() async {
        await withTaskGroup(of: Void.self) { group in
            for server in servers { group.addTask { await server.start() } }
        }
    }

    /// Ends open notification streams: the generation is being replaced.
    public func retire() { isClosing.store(true, ordering: .relaxed) }

    public func shutdown() async {
        retire()
        await withTaskGroup(of: Void.self) { group in
            for server in servers { group.addTask { await server.shutdown() } }
        }
    }

    // MARK: The pipeline's end

    func handle(_ request: GatewayRequest) async throws -> GatewayResponse {
        guard let exchange = request.context[MCPExchange.self] else { throw GatewayError.internalError("an MCP request without its exchange") }
        switch request.method {
        case .GET:
            return try await notifications(for: try openSession(exchange, request), scope: exchange.scope, request: request,
                                           isDraining: exchange.isDraining)
        case .DELETE:
            return await close(try openSession(exchange, request), scope: exchange.scope, request: request)
        default:
            break
        }
        let message = exchange.message ?? .null
        switch MCPMessageKind(message) {
        case .request(method: "initialize"):
            return try await initialize(message, scope: exchange.scope, request: request)
        case .request(let method):
            let session = try openSession(exchange, request)
            return try await dispatch(method, message, session: session, scope: exchange.scope, request: request)
        case .notification(let method):
            let session = try openSession(exchange, request)
            if method != "notifications/initialized" { await notify(message, session: session, exchange: exchange) }
            record(request) { $0.outcome = "ok" }
            return GatewayResponse(status: .accepted, body: .whole(ByteBuffer()))
        case .response:
            let session = try openSession(exchange, request)
            return await relayAnswer(message, session: session, sessionID: exchange.sessionID ?? "", scope: exchange.scope, request: request)
        case .invalid:
            record(request) { $0.outcome = "invalid" }
            return .json(JSONRPC.error(id: message["id"], code: JSONRPC.invalidRequest, "not a JSON-RPC 2.0 request, notification or response"),
                         status: .badRequest)
        }
    }

    // The task groups wait in functions of their own: `handle`'s frame lives as long as a tool
    // call waits for its server (docs/ARCHITECTURE.md, "Threads and tasks": async frames).

    /// Ends the session on every server it spans.
    @inline(never)
    private func close(_ session: MCPSession, scope: String?, request: GatewayRequest) async -> GatewayResponse {
        await withTaskGroup(of: Void.self) { group in
            for server in targets(scope) {
                group.addTask { await server.close(upstream: session.upstream[server.name], headers: [:]) }
            }
        }
        record(request) { $0.outcome = "ok" }
        return GatewayResponse(status: .ok, body: .whole(ByteBuffer()))
    }

    /// Passes a client's notification to every server of the session.
    @inline(never)
    private func notify(_ message: JSON, session: MCPSession, exchange: MCPExchange.Exchange) async {
        await withTaskGroup(of: Void.self) { group in
            for server in targets(exchange.scope) {
                group.addTask { await server.notify(message, upstream: session.upstream[server.name], headers: [:], session: exchange.sessionID) }
            }
        }
    }

    func targets(_ scope: String?) -> [any MCPServerConnection] {
        scope.flatMap { byName[$0].map { [$0] } } ?? servers
    }

    func record(_ request: GatewayRequest, _ change: (inout MCPCallFacts) -> Void) {
        request.context.recordFacts { facts in
            var mcp = facts.mcp ?? MCPCallFacts(method: request.method.rawValue)
            change(&mcp)
            facts.mcp = mcp
        }
    }

    /// The session a request names: sealed by this gateway's key, for this path, by this caller.
    /// Anything else is a session this server does not know: 404, as the transport says.
    private func openSession(_ exchange: MCPExchange.Exchange, _ request: GatewayRequest) throws -> MCPSession {
        guard let id = exchange.sessionID else {
            record(request) { $0.outcome = "invalid" }
            throw GatewayError(.badRequest, type: "invalid_request_error", "an Mcp-Session-Id header is required; send initialize first",
                               code: "missing_session")
        }
        guard let session = seal.open(id), session.scope == exchange.scope, session.caller == request.context.identity?.name else {
            record(request) { $0.outcome = "invalid" }
            throw GatewayError(.notFound, type: "invalid_request_error", "session not found; initialize a new one", code: "session_not_found")
        }
        if let version = request.headers.first(name: "mcp-protocol-version"), version != session.version,
           !MCPVersions.supported.contains(version) {
            record(request) { $0.outcome = "invalid" }
            throw GatewayError(.badRequest, type: "invalid_request_error",
                               "unsupported MCP-Protocol-Version \(version); supported: \(MCPVersions.supported.joined(separator: ", "))",
                               code: "unsupported_protocol_version")
        }
        return session
    }

    // MARK: Server-to-client requests

    /// A client's answer to a server's request it got as `{server}/{token}`: back to that server,
    /// which checks that the request was this session's. Anything else is refused with HTTP 400
    /// and a JSON-RPC error, so that a client sees why its answer went nowhere.
    private func relayAnswer(_ message: JSON, session: MCPSession, sessionID: String, scope: String?, request: GatewayRequest) async -> GatewayResponse {
        let id = message["id"] ?? .null
        guard let relayed = id.string, let slash = relayed.firstIndex(of: "/"),
              let server = byName[String(relayed[..<slash])], scope == nil || scope == server.name else {
            record(request) { $0.outcome = "unknown" }
            return .json(JSONRPC.error(id: nil, code: JSONRPC.invalidParams, "no server's request has the id \(id.description)"), status: .badRequest)
        }
        record(request) { $0.server = server.name }
        let token = String(relayed[relayed.index(after: slash)...])
        guard await server.answer(message, token: token, upstream: session.upstream[server.name], headers: [:], session: sessionID) else {
            record(request) { $0.outcome = "unknown" }
            return .json(JSONRPC.error(id: nil, code: JSONRPC.invalidParams,
                                       "no request of the MCP server `\(server.name)` in this session awaits an answer with id \(id.description)"),
                         status: .badRequest)
        }
        record(request) { $0.outcome = "ok" }
        return GatewayResponse(status: .accepted, body: .whole(ByteBuffer()))
    }

    // MARK: Sessions

    private func initialize(_ message: JSON, scope: String?, request: GatewayRequest) async throws -> GatewayResponse {
        let id = message["id"] ?? .null
        let version = MCPVersions.negotiate(message["params"]?["protocolVersion"]?.string)
        // Each HTTP server learns what this client can answer of its requests (they are relayed).
        let capabilities = MCPClientCapabilities.relayable(message["params"]?["capabilities"])
        let opened = await withTaskGroup(of: (String, Result<(result: JSON, upstream: MCPSession.Upstream?), MCPServerError>).self) { group in
            for server in targets(scope) {
                group.addTask {
                    do { return (server.name, .success(try await server.open(version: version, capabilities: capabilities, headers: [:]))) } catch {
                        return (server.name, .failure(error as? MCPServerError ?? .unavailable("\(error)")))
                    }
                }
            }
            var results: [String: Result<(result: JSON, upstream: MCPSession.Upstream?), MCPServerError>] = [:]
            for await (name, result) in group { results[name] = result }
            return results
        }
        var upstream: [String: MCPSession.Upstream] = [:]
        var results: [(String, JSON)] = []
        for server in targets(scope) {
            switch opened[server.name] {
            case .success(let opened)?:
                if let session = opened.upstream { upstream[server.name] = session }
                results.append((server.name, opened.result))
            case .failure(let error)?:
                logger.warning("mcp server unavailable for a new session", metadata: ["mcp_server": .string(server.name), "error": .string(error.description)])
            case nil:
                break
            }
        }
        if let scope, results.isEmpty {
            record(request) { $0.outcome = "unavailable"; $0.server = scope }
            return .json(JSONRPC.error(id: id, code: JSONRPC.serverUnavailable, "the MCP server `\(scope)` is unavailable"))
        }
        let session = MCPSession(scope: scope, version: version, upstream: upstream, caller: request.context.identity?.name,
                                 created: Int(Date().timeIntervalSince1970))
        var result: JSON
        if scope != nil, let only = results.first?.1 {
            result = only
            result["protocolVersion"] = JSON(version)
        } else {
            let subscribes = results.contains { $0.1["capabilities"]?["resources"]?["subscribe"]?.bool == true }
            let listChanged = JSON(object: [("listChanged", JSON(true))])
            let capabilities = JSON(object: [
                ("tools", listChanged), ("prompts", listChanged),
                ("resources", JSON(object: [("listChanged", JSON(true)), ("subscribe", JSON(subscribes))])),
                ("logging", JSON.object()), ("completions", JSON.object()),
            ])
            let serverInfo = JSON(object: [("name", JSON("sluice")), ("version", JSON(Self.version))])
            result = JSON(object: [("protocolVersion", JSON(version)), ("capabilities", capabilities), ("serverInfo", serverInfo)])
            let instructions = results.compactMap { name, result in result["instructions"]?.string.map { "\(name): \($0)" } }
            if !instructions.isEmpty { result["instructions"] = JSON(instructions.joined(separator: "\n\n")) }
        }
        record(request) { $0.outcome = "ok" }
        var response = GatewayResponse.json(JSONRPC.result(id: id, result))
        response.headers.add(name: "mcp-session-id", value: seal.seal(session))
        return response
    }
}
