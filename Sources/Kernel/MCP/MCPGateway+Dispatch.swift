import Foundation
import NIOCore
import NIOHTTP1

/// Where each request goes: to one server by the name it carries, to every server (the list
/// methods), or nowhere (`ping`).
extension MCPGateway {
    func dispatch(_ method: String, _ message: JSON, session: MCPSession, scope: String?, request: GatewayRequest) async throws -> GatewayResponse {
        // Where the request goes is decided synchronously, and each way waits at one call: this
        // frame lives as long as a tool call waits for its server (docs/ARCHITECTURE.md, "Threads
        // and tasks": async frames).
        let id = message["id"] ?? .null
        switch destination(method, message, id: id, scope: scope, request: request) {
        case .answered(let response):
            return response
        case .list(let key, let targets, let qualify):
            return try await list(method, key, id: id, from: targets, session: session, qualify: qualify, request: request)
        case .server(let forwarded, let server, let name):
            return try await forward(forwarded, to: server, name: name, session: session, request: request)
        case .resource(let uri):
            return try await forwardByResource(message, uri: uri, session: session, request: request)
        case .everyServer:
            return await setLevel(message, id: id, session: session, request: request)
        }
    }

    /// Where a request goes.
    private enum Destination {
        /// Answered here: `ping`, a refusal, an unknown name or method.
        case answered(GatewayResponse)
        /// A list method, to each of `targets`; `qualify` names their items `{server}__{name}`.
        case list(key: String, targets: [any MCPServerConnection], qualify: Bool)
        /// To one server, the message as it is to be sent (the name without its server's prefix).
        case server(JSON, any MCPServerConnection, name: String?)
        /// To the server that has the resource.
        case resource(uri: String)
        /// To every server (`logging/setLevel`).
        case everyServer
    }

    @inline(never)
    private func destination(_ method: String, _ message: JSON, id: JSON, scope: String?, request: GatewayRequest) -> Destination {
        let identity = request.context.identity
        if method == "ping" {
            record(request) { $0.outcome = "ok" }
            return .answered(.json(JSONRPC.result(id: id, .object())))
        }
        if let scope, let server = byName[scope] {
            // One server alone: names unchanged, the allowlist still over `{server}__{tool}`.
            switch method {
            case "tools/list":
                return .list(key: "tools", targets: [server], qualify: false)
            case "tools/call":
                let tool = message["params"]?["name"]?.string ?? ""
                if let identity, !identity.allows(tool: names.qualified(server: scope, tool)) {
                    return .answered(denied(id: id, tool: tool, request: request))
                }
                return .server(message, server, name: tool)
            case "prompts/list", "resources/list", "resources/templates/list":
                return .list(key: Self.listKey(method), targets: [server], qualify: false)
            default:
                return .server(message, server, name: message["params"]?["name"]?.string)
            }
        }
        switch method {
        case "tools/list", "prompts/list", "resources/list", "resources/templates/list":
            return .list(key: Self.listKey(method), targets: servers, qualify: method != "resources/list" && method != "resources/templates/list")
        case "tools/call", "prompts/get":
            let qualified = message["params"]?["name"]?.string ?? ""
            guard let split = names.split(qualified), let server = byName[split.server] else {
                record(request) { $0.outcome = "unknown" }
                return .answered(.json(JSONRPC.error(id: id, code: JSONRPC.invalidParams, "unknown \(method == "tools/call" ? "tool" : "prompt") `\(qualified)`")))
            }
            if method == "tools/call", let identity, !identity.allows(tool: qualified) {
                return .answered(denied(id: id, tool: qualified, request: request))
            }
            var forwarded = message
            forwarded["params"]?["name"] = JSON(split.name)
            return .server(forwarded, server, name: qualified)
        case "resources/read", "resources/subscribe", "resources/unsubscribe":
            return .resource(uri: message["params"]?["uri"]?.string ?? "")
        case "completion/complete":
            let reference = message["params"]?["ref"]
            if reference?["type"]?.string == "ref/prompt" {
                let qualified = reference?["name"]?.string ?? ""
                guard let split = names.split(qualified), let server = byName[split.server] else {
                    record(request) { $0.outcome = "unknown" }
                    return .answered(.json(JSONRPC.error(id: id, code: JSONRPC.invalidParams, "unknown prompt `\(qualified)`")))
                }
                var forwarded = message
                forwarded["params"]?["ref"]?["name"] = JSON(split.name)
                return .server(forwarded, server, name: qualified)
            }
            return .resource(uri: reference?["uri"]?.string ?? "")
        case "logging/setLevel":
            return .everyServer
        default:
            record(request) { $0.outcome = "unknown" }
            return .answered(.json(JSONRPC.error(id: id, code: JSONRPC.methodNotFound, "method not found: \(method)")))
        }
    }

    /// Every server gets the level.
    @inline(never)
    private func setLevel(_ message: JSON, id: JSON, session: MCPSession, request: GatewayRequest) async -> GatewayResponse {
        await withTaskGroup(of: Void.self) { group in
            for server in servers {
                group.addTask { _ = try? await server.request(message, upstream: session.upstream[server.name], headers: [:]).response() }
            }
        }
        record(request) { $0.outcome = "ok" }
        return .json(JSONRPC.result(id: id, .object()))
    }

    static func listKey(_ method: String) -> String {
        switch method {
        case "prompts/list": "prompts"
        case "resources/list": "resources"
        case "resources/templates/list": "resourceTemplates"
        default: "tools"
        }
    }

    private func denied(id: JSON, tool: String, request: GatewayRequest) -> GatewayResponse {
        record(request) { $0.outcome = "denied" }
        let who = request.context.identity.map { "`\($0.name)`" } ?? "this caller"
        return .json(JSONRPC.error(id: id, code: JSONRPC.forbidden, "\(who) may not call the tool `\(tool)`"))
    }

    /// A resource goes to the server that listed it; one no list showed (a template's) to each
    /// server in turn until one has it.
    private func forwardByResource(_ message: JSON, uri: String, session: MCPSession, request: GatewayRequest) async throws -> GatewayResponse {
        if let owner = resourceOwners.withLockedValue({ $0[uri] }), let server = byName[owner] {
            return try await forward(message, to: server, name: nil, session: session, request: request)
        }
        for server in servers {
            guard let reply = try? await server.request(message, upstream: session.upstream[server.name], headers: [:]).response(),
                  reply["result"] != nil else { continue }
            record(request) { $0.server = server.name; $0.outcome = "ok" }
            return .json(reply)
        }
        record(request) { $0.outcome = "unknown" }
        return .json(JSONRPC.error(id: message["id"], code: JSONRPC.invalidParams, "no server has the resource `\(uri)`"))
    }

    /// Every page of a list method from each server, merged; a server that fails is left out with a log line.
    private func list(_ method: String, _ key: String, id: JSON, from targets: [any MCPServerConnection], session: MCPSession,
                      qualify: Bool, request: GatewayRequest) async throws -> GatewayResponse {
        let identity = request.context.identity
        let pages = await withTaskGroup(of: (String, Result<[JSON], MCPServerError>).self) { group in
            for server in targets {
                group.addTask { [self] in
                    do { return (server.name, .success(try await allPages(method, key, from: server, session: session))) } catch {
                        return (server.name, .failure(error as? MCPServerError ?? .unavailable("\(error)")))
                    }
                }
            }
            var pages: [String: Result<[JSON], MCPServerError>] = [:]
            for await (name, result) in group { pages[name] = result }
            return pages
        }
        var merged = JSON.array()
        for server in targets {
            switch pages[server.name] {
            case .success(let items)?:
                var names: Set<String> = []
                for var item in items {
                    if let name = item["name"]?.string {
                        let qualifiedName = self.names.qualified(server: server.name, name)
                        if key == "tools", let identity, !identity.allows(tool: qualifiedName) { continue }
                        names.insert(qualify ? qualifiedName : name)
                        if qualify { item["name"] = JSON(qualifiedName) }
                    }
                    if key == "resources", let uri = item["uri"]?.string {
                        resourceOwners.withLockedValue { owners in
                            if owners.count < 100_000 { owners[uri] = server.name }
                        }
                    }
                    merged.append(item)
                }
                if key == "tools" || key == "prompts" {
                    listed.withLockedValue { $0[server.name + "\u{0}" + key] = names }
                }
            case .failure(let error)?:
                logger.warning("mcp server left out of \(method)", metadata: ["mcp_server": .string(server.name), "error": .string(error.description)])
            case nil:
                break
            }
        }
        record(request) { $0.outcome = "ok"; if targets.count == 1 { $0.server = targets[0].name } }
        return .json(JSONRPC.result(id: id, JSON(object: [(key, merged)])))
    }

    private func allPages(_ method: String, _ key: String, from server: any MCPServerConnection, session: MCPSession) async throws(MCPServerError) -> [JSON] {
        var items: [JSON] = []
        var cursor: JSON?
        for page in 0..<50 {
            let params = cursor.map { JSON(object: [("cursor", $0)]) }
            let upstream = try await upstreamSession(of: server, session)
            let response = try await server.request(JSONRPC.request(id: JSON("sluice-list-\(page)"), method: method, params: params),
                                                    upstream: upstream, headers: [:]).response()
            guard let result = response["result"] else {
                // A server without this capability has nothing to list.
                if response["error"]?["code"]?.int == JSONRPC.methodNotFound { return [] }
                throw .unavailable(response["error"]?["message"]?.string ?? "no result")
            }
            items += result[key]?.elements ?? []
            guard let next = result["nextCursor"], next.string != nil else { break }
            cursor = next
        }
        return items
    }

    /// The server's side of the session; a server that was down when the session began gets a
    /// fresh upstream session now (the client's id cannot change to carry it).
    private func upstreamSession(of server: any MCPServerConnection, _ session: MCPSession) async throws(MCPServerError) -> MCPSession.Upstream? {
        if let upstream = session.upstream[server.name] { return upstream }
        guard server is MCPHTTPServer else { return nil }
        return try await server.open(version: session.version, capabilities: .object(), headers: [:]).upstream
    }

    /// Sends one request to one server and hands its answer back, whole or streamed.
    func forward(_ message: JSON, to server: any MCPServerConnection, name: String?, session: MCPSession,
                 request: GatewayRequest) async throws -> GatewayResponse {
        // The work around the wait is synchronous: this frame lives as long as the tool call
        // waits for its server (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let span = begin(message, to: server, name: name, request: request)
        let reply: MCPReply
        do {
            let upstream = try await upstreamSession(of: server, session)
            // The reply goes to this client, which answers the server's requests on it and may cancel it.
            reply = try await server.request(message, upstream: upstream, headers: span?.headers ?? [:],
                                             session: request.context[MCPExchange.self]?.sessionID)
        } catch {
            return failed(error, message, server: server, span: span, request: request)
        }
        return answered(reply, message, server: server, span: span, request: request)
    }

    /// Records where the call goes; its span, when traced.
    @inline(never)
    private func begin(_ message: JSON, to server: any MCPServerConnection, name: String?, request: GatewayRequest) -> AttemptSpan? {
        let known = name.map { name in
            let key = message["method"]?.string == "prompts/get" ? "prompts" : "tools"
            let own = names.split(name).map(\.name) ?? name
            return listed.withLockedValue { ($0[server.name + "\u{0}" + key] ?? []).contains(own) || ($0[server.name + "\u{0}" + key] ?? []).contains(name) }
        } ?? false
        record(request) { $0.server = server.name; $0.isKnownName = known }
        let span = request.context.attemptTracer?.startAttempt(provider: server.name, upstreamModel: name ?? (message["method"]?.string ?? ""), attempt: 1)
        request.context.recordFacts { $0.provider = server.name; $0.attempts = 1; $0.upstreamStartedAt = .now }
        return span
    }

    @inline(never)
    private func failed(_ error: MCPServerError, _ message: JSON, server: any MCPServerConnection, span: AttemptSpan?,
                        request: GatewayRequest) -> GatewayResponse {
        request.context.recordFacts { $0.upstreamRespondedAt = .now }
        let answer = failure(error, server: server, id: message["id"] ?? .null, request: request)
        span?.end(GatewayError(.badGateway, type: "upstream_error", error.description), nil)
        return .json(answer)
    }

    @inline(never)
    private func answered(_ reply: MCPReply, _ message: JSON, server: any MCPServerConnection, span: AttemptSpan?,
                          request: GatewayRequest) -> GatewayResponse {
        request.context.recordFacts { $0.upstreamRespondedAt = .now }
        switch reply {
        case .message(let answer):
            record(request) { $0.outcome = answer["error"] == nil ? "ok" : "error" }
            span?.end(nil, nil)
            return .json(answer)
        case .stream(let messages):
            let context = request.context, id = message["id"] ?? .null
            let answered: @Sendable (JSON) -> Void = { answer in context.recordFacts { $0.mcp?.outcome = answer["error"] == nil ? "ok" : "error" } }
            let events = EventStream(MCPEventSequence(messages: messages, answered: answered)).observing({ _ in }, finished: { error in
                span?.end(error.map { GatewayError($0) }, nil)
            }).catchingErrors { [self] error in
                guard let error = error as? MCPServerError else { return nil }
                let answer = failure(error, server: server, id: id, request: request)
                return SSEEvent(event: "message", data: answer.description)
            }
            return GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream", "cache-control": "no-cache"], body: .events(events))
        }
    }

    /// A timeout as the manifest wrote it: `30`, `0.5`.
    static func seconds(_ duration: Duration) -> String {
        let value = duration.inSeconds
        return value == value.rounded() ? String(Int(value)) : String(format: "%g", value)
    }

    /// The JSON-RPC error for a server that did not answer, naming it.
    private func failure(_ error: MCPServerError, server: any MCPServerConnection, id: JSON, request: GatewayRequest) -> JSON {
        switch error {
        case .timedOut:
            record(request) { $0.outcome = "timeout" }
            return JSONRPC.error(id: id, code: JSONRPC.timedOut,
                                 "the MCP server `\(server.name)` did not answer within \(Self.seconds(server.timeout)) s")
        case .sessionExpired:
            record(request) { $0.outcome = "unavailable" }
            return JSONRPC.error(id: id, code: JSONRPC.serverUnavailable, "the MCP server `\(server.name)` ended its session; initialize again")
        case .unavailable(let why):
            record(request) { $0.outcome = "unavailable" }
            logger.warning("mcp server unavailable", metadata: ["mcp_server": .string(server.name), "error": .string(why)])
            return JSONRPC.error(id: id, code: JSONRPC.serverUnavailable, "the MCP server `\(server.name)` is unavailable: \(why)")
        }
    }
}
