import Foundation
import Kernel
import Logging
import NIOCore
import KernelTesting
import NIOHTTP1
import Plugins
import Testing

/// `/mcp` in-process against a scripted MCP server over HTTP: routing by qualified name, the
/// allowlist, sessions, and what access-log-facing facts the calls carry.
@Suite struct MCPGatewayTests {
    /// An MCP server that knows `add` and `echo`, gives session `up-1`, and answers a call with
    /// the name it got and the session header it was sent.
    static func server() async throws -> LocalHTTPServer {
        try await LocalHTTPServer.start { request in
            guard let message = try? JSON.parse(request.text), let method = message["method"]?.string else { return .json("{}", status: .accepted) }
            let id = message["id"] ?? .null
            var reply = LocalHTTPServer.Reply.json("{}", status: .accepted)
            switch method {
            case "initialize":
                reply = .json(JSONRPC.result(id: id, ["protocolVersion": "2025-06-18", "capabilities": ["tools": [:]],
                                                      "serverInfo": ["name": "scripted", "version": "1"]]).description)
                reply.headers.add(name: "mcp-session-id", value: "up-1")
            case "tools/list":
                reply = .json(JSONRPC.result(id: id, ["tools": [["name": "add", "inputSchema": [:]], ["name": "echo", "inputSchema": [:]]]]).description)
            case "tools/call":
                let text = "\(message["params"]?["name"]?.string ?? "?") in \(request.headers.first(name: "mcp-session-id") ?? "no session")"
                reply = .json(JSONRPC.result(id: id, ["content": [["type": "text", "text": JSON(text)]]]).description)
            default:
                break
            }
            return reply
        }
    }

    static func manifest(_ url: String) -> String {
        """
        {"mcp_servers": {"web": {"url": "\(url)/mcp"}}, "mcp_session_key": "a-session-key-of-at-least-32-characters",
         "pipeline": [{"plugin": "api-key-auth", "config": {"keys": [
             {"name": "all", "key": "key-all"}, {"name": "adder", "key": "key-adder", "mcp_tools": ["web__add"]}]}},
                      {"plugin": "router"}]}
        """
    }

    static func rpc(_ gateway: TestGateway, _ method: String, id: Int = 1, params: JSON? = nil, session: String?, key: String = "key-all",
                    path: String = "/mcp") async throws -> TestResponse {
        var headers: HTTPHeaders = ["authorization": "Bearer \(key)", "accept": "application/json, text/event-stream"]
        if let session { headers.add(name: "mcp-session-id", value: session) }
        return try await gateway.send(.POST, path, body: JSONRPC.request(id: JSON(id), method: method, params: params), headers: headers)
    }

    @Test func routesByQualifiedNameWithinTheSession() async throws {
        let server = try await Self.server()
        try await withGateway(Self.manifest(server.url)) { gateway in
            let opened = try await Self.rpc(gateway, "initialize", params: ["protocolVersion": "2025-06-18", "capabilities": [:],
                                                                             "clientInfo": ["name": "t", "version": "1"]], session: nil)
            #expect(opened.body?["result"]?["protocolVersion"]?.string == "2025-06-18")
            let session = try #require(opened.headers.first(name: "mcp-session-id"))
            #expect(!session.contains("up-1"))

            let tools = try await Self.rpc(gateway, "tools/list", session: session)
            #expect(tools.body?["result"]?["tools"]?.elements.compactMap { $0["name"]?.string } == ["web__add", "web__echo"])
            let call = try await Self.rpc(gateway, "tools/call", params: ["name": "web__echo", "arguments": [:]], session: session)
            #expect(call.body?["result"]?["content"]?[0]?["text"]?.string == "echo in up-1")
            #expect(call.body?["id"]?.int == 1)

            let unknown = try await Self.rpc(gateway, "tools/call", params: ["name": "nowhere__echo"], session: session)
            #expect(unknown.body?["error"]?["code"]?.int == JSONRPC.invalidParams)
            let unknownMethod = try await Self.rpc(gateway, "frobnicate", session: session)
            #expect(unknownMethod.body?["error"]?["code"]?.int == JSONRPC.methodNotFound)
            #expect(try await Self.rpc(gateway, "ping", session: session).body?["result"] != nil)

            // One server alone: its own names.
            let single = try await Self.rpc(gateway, "initialize", params: ["protocolVersion": "2025-06-18"], session: nil, path: "/mcp/web")
            let singleSession = try #require(single.headers.first(name: "mcp-session-id"))
            let singleCall = try await Self.rpc(gateway, "tools/call", params: ["name": "add"], session: singleSession, path: "/mcp/web")
            #expect(singleCall.body?["result"]?["content"]?[0]?["text"]?.string == "add in up-1")
        }
    }

    @Test func allowlistFiltersAndRefuses() async throws {
        let server = try await Self.server()
        try await withGateway(Self.manifest(server.url)) { gateway in
            let opened = try await Self.rpc(gateway, "initialize", params: ["protocolVersion": "2025-11-25"], session: nil, key: "key-adder")
            let session = try #require(opened.headers.first(name: "mcp-session-id"))
            let tools = try await Self.rpc(gateway, "tools/list", session: session, key: "key-adder")
            #expect(tools.body?["result"]?["tools"]?.elements.compactMap { $0["name"]?.string } == ["web__add"])
            let refused = try await Self.rpc(gateway, "tools/call", params: ["name": "web__echo"], session: session, key: "key-adder")
            #expect(refused.status == .ok)
            #expect(refused.body?["error"]?["code"]?.int == JSONRPC.forbidden)
            #expect(!server.requests.contains { $0.text.contains("\"echo\"") && $0.text.contains("tools/call") })
            // The session is the adder's: another key cannot use it.
            #expect(try await Self.rpc(gateway, "tools/list", session: session, key: "key-all").status == .notFound)
            #expect(try await Self.rpc(gateway, "tools/list", session: nil, key: "nope").status == .unauthorized)
        }
    }

    @Test func forgedSessionsAreNotFound() async throws {
        let server = try await Self.server()
        try await withGateway(Self.manifest(server.url)) { gateway in
            let opened = try await Self.rpc(gateway, "initialize", params: ["protocolVersion": "2025-11-25"], session: nil)
            let session = try #require(opened.headers.first(name: "mcp-session-id"))
            var altered = Array(session.utf8)
            altered[altered.count / 2] = altered[altered.count / 2] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
            #expect(try await Self.rpc(gateway, "tools/list", session: String(decoding: altered, as: UTF8.self)).status == .notFound)
            #expect(try await Self.rpc(gateway, "tools/list", session: nil).status == .badRequest)
        }
    }

    /// A server that asks its client during a call (its SSE answer: a sampling request, then the
    /// result) and stalls on `slow`; everything it is sent is recorded.
    static func askingServer() async throws -> LocalHTTPServer {
        try await LocalHTTPServer.start { request in
            guard let message = try? JSON.parse(request.text), let method = message["method"]?.string else { return .json("{}", status: .accepted) }
            let id = message["id"] ?? .null
            switch method {
            case "initialize":
                var reply = LocalHTTPServer.Reply.json(JSONRPC.result(id: id, ["protocolVersion": "2025-06-18", "capabilities": ["tools": [:]],
                                                                               "serverInfo": ["name": "asking", "version": "1"]]).description)
                reply.headers.add(name: "mcp-session-id", value: "up-1")
                return reply
            case "tools/call" where message["params"]?["name"]?.string == "slow":
                var reply = LocalHTTPServer.Reply.json(JSONRPC.result(id: id, ["content": []]).description)
                reply.delay = .seconds(5)
                return reply
            case "tools/call":
                let ask = JSONRPC.request(id: 5, method: "sampling/createMessage", params: ["maxTokens": 1, "messages": []])
                let done = JSONRPC.result(id: id, ["content": [["type": "text", "text": "asked"]]])
                return LocalHTTPServer.Reply(headers: ["content-type": "text/event-stream"],
                                             body: "event: message\ndata: \(ask)\n\nevent: message\ndata: \(done)\n\n")
            default:
                return .json("{}", status: .accepted)
            }
        }
    }

    static func open(_ gateway: TestGateway, capabilities: JSON = ["sampling": [:], "experimental": ["x": [:]]]) async throws -> String {
        let opened = try await rpc(gateway, "initialize", params: ["protocolVersion": "2025-06-18", "capabilities": capabilities,
                                                                   "clientInfo": ["name": "t", "version": "1"]], session: nil)
        return try #require(opened.headers.first(name: "mcp-session-id"))
    }

    static func post(_ gateway: TestGateway, _ message: JSON, session: String, key: String = "key-all") async throws -> TestResponse {
        try await gateway.send(.POST, "/mcp", body: message, headers: ["authorization": "Bearer \(key)", "mcp-session-id": session,
                                                                       "accept": "application/json, text/event-stream"])
    }

    @Test func relaysAServersRequestAndRoutesTheAnswerBack() async throws {
        let server = try await Self.askingServer()
        try await withGateway(Self.manifest(server.url)) { gateway in
            let session = try await Self.open(gateway)
            // The server learned what the client can answer, and nothing sluice does not relay.
            let initialize = try #require(server.requests.first { $0.text.contains("\"initialize\"") })
            #expect(try JSON.parse(initialize.text)["params"]?["capabilities"] == ["sampling": [:]])

            let call = try await Self.rpc(gateway, "tools/call", params: ["name": "web__add"], session: session)
            let messages = (call.events ?? []).compactMap { try? JSON.parse($0.data) }
            #expect(messages.count == 2)
            #expect(messages.first?["method"]?.string == "sampling/createMessage")
            #expect(messages.first?["id"]?.string == "web/5")
            #expect(messages.last?["result"]?["content"]?[0]?["text"]?.string == "asked")

            let answer: JSON = ["jsonrpc": "2.0", "id": "web/5", "result": ["role": "assistant", "content": ["type": "text", "text": "hi"]]]
            let relayed = try await Self.post(gateway, answer, session: session)
            #expect(relayed.status == .accepted)
            let delivered = try #require(server.requests.last)
            let sent = try JSON.parse(delivered.text)
            #expect(sent["id"]?.int == 5)
            #expect(sent["result"]?["content"]?["text"]?.string == "hi")
            #expect(delivered.headers.first(name: "mcp-session-id") == "up-1")

            // Ids sluice never gave out: HTTP 400 and a JSON-RPC error, nothing sent on.
            let count = server.requests.count
            for bad: JSON in ["nowhere/5", "web/not json", "web", 5] {
                var forged = answer
                forged["id"] = bad
                let refused = try await Self.post(gateway, forged, session: session)
                #expect(refused.status == .badRequest)
                #expect(refused.body?["error"]?["code"]?.int == JSONRPC.invalidParams)
            }
            #expect(server.requests.count == count)
        }
    }

    @Test func aTimedOutCallIsCancelledAtTheServer() async throws {
        let server = try await Self.askingServer()
        let manifest = Self.manifest(server.url).replacingOccurrences(of: #"{"url": "\#(server.url)/mcp"}"#,
                                                                      with: #"{"url": "\#(server.url)/mcp", "timeout_s": 0.5}"#)
        #expect(manifest.contains("timeout_s"))
        try await withGateway(manifest) { gateway in
            let session = try await Self.open(gateway)
            let call = try await Self.rpc(gateway, "tools/call", id: 42, params: ["name": "web__slow"], session: session)
            #expect(call.body?["error"]?["code"]?.int == JSONRPC.timedOut)
            #expect(call.body?["error"]?["message"]?.string?.contains("`web` did not answer within 0.5 s") == true)
            let deadline = ContinuousClock.now + .seconds(5)
            var cancelled: JSON?
            while cancelled == nil, ContinuousClock.now < deadline {
                cancelled = server.requests.compactMap { try? JSON.parse($0.text) }.first { $0["method"]?.string == "notifications/cancelled" }
                if cancelled == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(cancelled?["params"]?["requestId"]?.int == 42)
        }
    }

    /// A stdio server in sh: it logs every line it reads to the file named by its argument; its
    /// tool `ask` asks the client for roots (answering "relayed" if the answer holds file:///x)
    /// and `wait` never answers.
    static let stdioScript = #"""
        log="$1"
        while IFS= read -r line; do
          printf '%s\n' "$line" >> "$log"
          id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
          case "$line" in
            *'"method":"initialize"'*)
              printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"sh","version":"1"}}}\n' "$id" ;;
            *'"name":"ask"'*)
              printf '%s\n' '{"jsonrpc":"2.0","id":"q1","method":"roots/list"}'
              IFS= read -r answer
              printf '%s\n' "$answer" >> "$log"
              case "$answer" in *'"id":"q1"'*'file:///x'*) text=relayed ;; *) text=other ;; esac
              printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"%s"}]}}\n' "$id" "$text" ;;
          esac
        done
        """#

    static func withStdioServer(_ body: (TestGateway, _ log: URL) async throws -> Void) async throws {
        let directory = URL(fileURLWithPath: TestFolder.make("mcp"))
        let script = directory.appendingPathComponent("server.sh"), log = directory.appendingPathComponent("lines.log")
        try stdioScript.write(to: script, atomically: true, encoding: .utf8)
        let manifest = """
            {"mcp_servers": {"local": {"command": ["/bin/sh", "\(script.path)", "\(log.path)"], "timeout_s": 10}},
             "mcp_session_key": "a-session-key-of-at-least-32-characters",
             "pipeline": [{"plugin": "api-key-auth", "config": {"keys": [{"name": "all", "key": "key-all"}]}}, {"plugin": "router"}]}
            """
        try await withGateway(manifest, environment: ["PATH": "/usr/bin:/bin"]) { gateway in try await body(gateway, log) }
    }

    static func lines(_ log: URL, containing text: String, atLeast count: Int = 1) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let found = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init).filter { $0.contains(text) }
            if found.count >= count { return found }
            try await Task.sleep(for: .milliseconds(20))
        }
        return []
    }

    @Test func aStdioServersRequestGoesToItsCallsClientOnly() async throws {
        try await Self.withStdioServer { gateway, log in
            let mine = try await Self.open(gateway), other = try await Self.open(gateway)
            let headers: HTTPHeaders = ["authorization": "Bearer key-all", "mcp-session-id": mine, "accept": "application/json, text/event-stream"]
            let body = JSONRPC.request(id: 9, method: "tools/call", params: ["name": "local__ask"]).encoded(using: ByteBufferAllocator())
            // Read event by event: the call goes on only once the client answered.
            let call = await gateway.generation.respond(uri: "/mcp", headers: headers, body: body, logger: Logger(label: "test"))
            guard case .events(let events) = call.body else { Issue.record("expected a stream"); return }
            var iterator = events.makeAsyncIterator()
            let request = try JSON.parse(try #require(try await iterator.next()).data)
            #expect(request["method"]?.string == "roots/list")
            let id = try #require(request["id"]?.string)
            #expect(id.hasPrefix("local/") && id != "local/q1")

            let answer: JSON = ["jsonrpc": "2.0", "id": JSON(id), "result": ["roots": [["uri": "file:///x"]]]]
            // Another session cannot answer it, nor can a made-up token.
            #expect(try await Self.post(gateway, answer, session: other).status == .badRequest)
            var madeUp = answer
            madeUp["id"] = "local/q1"
            #expect(try await Self.post(gateway, madeUp, session: mine).status == .badRequest)
            #expect(try await Self.post(gateway, answer, session: mine).status == .accepted)
            // The token is spent.
            #expect(try await Self.post(gateway, answer, session: mine).status == .badRequest)

            let result = try JSON.parse(try #require(try await iterator.next()).data)
            #expect(result["id"]?.int == 9)
            #expect(result["result"]?["content"]?[0]?["text"]?.string == "relayed")
            // The server got the answer under its own id.
            #expect(try await Self.lines(log, containing: "file:///x").first?.contains(#""id":"q1""#) == true)
        }
    }

    @Test func aClientsCancellationReachesTheStdioServerUnderSluicesID() async throws {
        try await Self.withStdioServer { gateway, log in
            let mine = try await Self.open(gateway), other = try await Self.open(gateway)
            async let waiting = Self.rpc(gateway, "tools/call", id: 77, params: ["name": "local__wait"], session: mine)
            let forwarded = try #require(try await Self.lines(log, containing: #""name":"wait""#).first)
            let sluiceID = try #require(try JSON.parse(forwarded)["id"]?.int)
            let cancel: JSON = ["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 77, "reason": "no"]]
            // Another session's request 77 is not this one.
            #expect(try await Self.post(gateway, cancel, session: other).status == .accepted)
            #expect(try await Self.post(gateway, cancel, session: mine).status == .accepted)
            let cancelled = try await Self.lines(log, containing: "notifications/cancelled")
            #expect(cancelled.count == 1)
            #expect(cancelled.first.flatMap { try? JSON.parse($0) }?["params"]?["requestId"]?.int == sluiceID)
            // The call ends without the server's answer.
            #expect(try await waiting.body?["error"] != nil)
        }
    }

    @Test func aStdioServersRequestGoesOnlyToTheOneSessionWithCallsInFlight() async throws {
        try await Self.withStdioServer { gateway, log in
            let mine = try await Self.open(gateway), other = try await Self.open(gateway)
            @Sendable func start(_ tool: String, id: Int, session: String) async -> GatewayResponse {
                let headers: HTTPHeaders = ["authorization": "Bearer key-all", "mcp-session-id": session, "accept": "application/json, text/event-stream"]
                let body = JSONRPC.request(id: JSON(id), method: "tools/call", params: ["name": JSON(tool)]).encoded(using: ByteBufferAllocator())
                return await gateway.generation.respond(uri: "/mcp", headers: headers, body: body, logger: Logger(label: "test"))
            }
            let cancel = { (id: Int) -> JSON in ["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": JSON(id)]] }

            // Another session's call in flight: whose request it is cannot be known, so sluice answers it (no roots).
            async let othersWait = start("local__wait", id: 1, session: other)
            _ = try await Self.lines(log, containing: #""name":"wait""#)
            let crowded = try await Self.rpc(gateway, "tools/call", id: 2, params: ["name": "local__ask"], session: mine)
            #expect(crowded.body?["result"]?["content"]?[0]?["text"]?.string == "other")
            #expect(try await Self.post(gateway, cancel(1), session: other).status == .accepted)
            _ = await othersWait

            // Two calls of one session: the request goes to that client, on its oldest call's stream.
            async let myWait = start("local__wait", id: 3, session: mine)
            _ = try await Self.lines(log, containing: #""name":"wait""#, atLeast: 2)
            async let ask = start("local__ask", id: 4, session: mine)
            guard case .events(let events) = await myWait.body else { Issue.record("expected a stream"); return }
            var iterator = events.makeAsyncIterator()
            let request = try JSON.parse(try #require(try await iterator.next()).data)
            let relayedID = try #require(request["id"]?.string)
            #expect(relayedID.hasPrefix("local/"))
            let answer: JSON = ["jsonrpc": "2.0", "id": JSON(relayedID), "result": ["roots": [["uri": "file:///x"]]]]
            #expect(try await Self.post(gateway, answer, session: mine).status == .accepted)
            guard case .whole(let buffer) = await ask.body else { Issue.record("expected a whole answer"); return }
            #expect(try JSON.parse(buffer)["result"]?["content"]?[0]?["text"]?.string == "relayed")
            #expect(try await Self.post(gateway, cancel(3), session: mine).status == .accepted)
        }
    }
}
