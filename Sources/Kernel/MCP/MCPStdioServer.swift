import Logging
import NIOConcurrencyHelpers
import NIOHTTP1

/// A server the gateway starts as a child process and speaks to over stdin/stdout. One process
/// serves every client session: the gateway initializes it once, renumbers each request (and its
/// progress token) so that clients cannot collide, and hands each answer back under the client's
/// own id. A request the server makes (sampling, elicitation, roots) goes to the client whose
/// calls are in flight, under the id `{server}/{random token}`, and only that client's session can
/// answer it; with no call in flight, or calls of several sessions (the stdio transport does not
/// say which call a request belongs to, and guessing would show one client's request to
/// another), the gateway answers what it can itself. A process that exits is started again after a delay that doubles up to
/// `max_restart_delay_s`; while it is down its calls fail at once and its tools are not listed.
final class MCPStdioServer: MCPServerConnection {
    let name: String
    let timeout: Duration
    private let command: [String]
    private let environment: [String: String]
    private let directory: String?
    private let maxRestartDelay: Duration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    static let firstRestartDelay: Duration = .milliseconds(500)

    private struct State {
        var process: StdioProcess?
        /// Counts processes started; a line or an exit of an older one is ignored.
        var incarnation = 0
        var initialized: JSON?
        var nextID = 1
        var pending: [Int: Pending] = [:]
        /// The gateway's progress tokens, to the request and the client's own token.
        var progress: [String: (id: Int, token: JSON)] = [:]
        /// The server's requests relayed to a client, by the token in the id the client saw.
        var relays: [String: Relay] = [:]
        var listeners: [Int: AsyncThrowingStream<JSON, any Error>.Continuation] = [:]
        var nextListener = 0
        var isStopping = false
        var restartDelay = MCPStdioServer.firstRestartDelay
        var startedAt = ContinuousClock.now
    }

    private struct Pending {
        let continuation: AsyncThrowingStream<JSON, any Error>.Continuation
        let clientID: JSON
        let token: String?
        /// The client's session id when its reply goes to a client that can answer the server's
        /// requests and cancel the call; `nil` for the gateway's own requests.
        let session: String?
        /// Tokens of the server's requests relayed to this call's client, still unanswered.
        var relays: [String] = []
    }

    private struct Relay {
        /// The server's own id for its request.
        let serverID: JSON
        let session: String
        /// The gateway's id of the call that holds it (it was relayed on that call's stream, or
        /// inherited from an earlier call of the same session that ended first).
        var call: Int
    }

    /// At most this many relayed requests wait for answers (each a small entry), whatever clients do.
    static let maxRelays = 10_000

    init(name: String, settings: MCPServerSettings, environment parent: [String: String], logger: Logger) {
        self.name = name
        command = settings.command ?? []
        var environment: [String: String] = [:]
        // The child inherits only what a program needs to run, never the gateway's secrets.
        for key in ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM", "SYSTEMROOT"] {
            if let value = parent[key] { environment[key] = value }
        }
        for (key, value) in settings.env { environment[key] = value }
        self.environment = environment
        directory = settings.cwd
        timeout = .seconds(settings.timeout)
        maxRestartDelay = .seconds(settings.maxRestartDelay)
        var logger = logger
        logger[metadataKey: "mcp_server"] = .string(name)
        self.logger = logger
    }

    // MARK: Lifecycle

    func start() async { await launch() }

    func shutdown() async {
        let (process, listeners) = state.withLockedValue { state in
            state.isStopping = true
            defer { state.listeners = [:] }
            return (state.process, Array(state.listeners.values))
        }
        for listener in listeners { listener.finish() }
        await process?.stop(grace: .seconds(2))
    }

    private func launch() async {
        let incarnation: Int? = state.withLockedValue { state in
            guard !state.isStopping else { return nil }
            state.incarnation += 1
            state.startedAt = .now
            return state.incarnation
        }
        guard let incarnation else { return }
        do {
            let process = try StdioProcess(command: command, environment: environment, directory: directory,
                                           onLine: { [weak self] line in self?.received(line, from: incarnation) },
                                           onExit: { [weak self] status in self?.exited(incarnation, status: status) })
            state.withLockedValue { $0.process = process }
        } catch {
            logger.error("mcp stdio server could not be started", metadata: ["error": .string("\(error)")])
            return scheduleRestart(after: incarnation)
        }
        // The gateway relays sampling, elicitation and roots to a client that can answer them
        // (and answers them itself, as best it can, when none can).
        let capabilities = JSON(object: MCPClientCapabilities.relayed.map { ($0, JSON.object()) })
        let initialize = JSONRPC.request(id: "init", method: "initialize", params: JSON(object: [
            ("protocolVersion", JSON(MCPVersions.latest)), ("capabilities", capabilities),
            ("clientInfo", JSON(object: [("name", "sluice"), ("version", JSON(MCPGateway.version))])),
        ]))
        do {
            // A program's start (an interpreter loading its libraries) is no call: it gets at least
            // 30 s, whatever a call's `timeout_s`.
            let response = try await send(initialize, session: nil, timeout: max(timeout, .seconds(30))).response()
            guard let result = response["result"], result["protocolVersion"]?.string != nil else {
                throw MCPServerError.unavailable("initialize failed: \(response["error"]?["message"]?.string ?? "no result")")
            }
            write(JSONRPC.notification("notifications/initialized"))
            let restarted = state.withLockedValue { state in
                state.initialized = result
                return state.incarnation > 1
            }
            logger.info("mcp stdio server ready", metadata: ["pid": .stringConvertible(state.withLockedValue { $0.process?.pid ?? 0 })])
            if restarted { announceListsChanged() }
        } catch {
            logger.warning("mcp stdio server did not initialize", metadata: ["error": .string("\(error)")])
            let process = state.withLockedValue { $0.process }
            await process?.stop(grace: .milliseconds(200))
        }
    }

    private func exited(_ incarnation: Int, status: Int32) {
        let (failed, wasReady, stopping) = state.withLockedValue { state -> ([Pending], Bool, Bool) in
            guard state.incarnation == incarnation else { return ([], false, true) }
            let failed = Array(state.pending.values)
            let wasReady = state.initialized != nil
            state.pending = [:]
            state.progress = [:]
            state.relays = [:]
            state.process = nil
            state.initialized = nil
            return (failed, wasReady, state.isStopping)
        }
        for pending in failed { pending.continuation.finish(throwing: MCPServerError.unavailable("the server's process exited")) }
        guard !stopping else { return }
        logger.warning("mcp stdio server exited; its tools are unavailable until it is back", metadata: ["status": .stringConvertible(status)])
        if wasReady { announceListsChanged() }
        scheduleRestart(after: incarnation)
    }

    private func scheduleRestart(after incarnation: Int) {
        let delay = state.withLockedValue { state -> Duration in
            // A process that ran a while is restarted quickly again; one that keeps failing, ever more slowly.
            if ContinuousClock.now - state.startedAt > .seconds(60) { state.restartDelay = Self.firstRestartDelay }
            defer { state.restartDelay = min(state.restartDelay * 2, maxRestartDelay) }
            return state.restartDelay
        }
        Task { [weak self] in
            try? await Task.sleep(for: delay)
            guard let self, self.state.withLockedValue({ $0.incarnation == incarnation && !$0.isStopping }) else { return }
            await self.launch()
        }
    }

    /// Tells listening clients to list again: the server's tools, prompts and resources came or went.
    private func announceListsChanged() {
        for kind in ["tools", "prompts", "resources"] { broadcast(JSONRPC.notification("notifications/\(kind)/list_changed")) }
    }

    private func broadcast(_ message: JSON) {
        for listener in state.withLockedValue({ Array($0.listeners.values) }) { listener.yield(message) }
    }

    // MARK: Messages

    private func write(_ message: JSON) {
        state.withLockedValue { $0.process }?.send(message.encoded())
    }

    /// Sends a request under a gateway id; the stream yields its progress and the server's
    /// requests relayed to its client, and then its answer, under the caller's id and token.
    private func send(_ message: JSON, session: String?, timeout: Duration) -> MCPReply {
        var message = message
        let clientToken = message["params"]?["_meta"]?["progressToken"]
        let (stream, continuation) = AsyncThrowingStream<JSON, any Error>.makeStream()
        let id: Int? = state.withLockedValue { state in
            guard state.process != nil, !state.isStopping else { return nil }
            let id = state.nextID
            state.nextID += 1
            let token = clientToken.map { _ in "sluice-\(id)" }
            state.pending[id] = Pending(continuation: continuation, clientID: message["id"] ?? .null, token: token, session: session)
            if let token, let clientToken { state.progress[token] = (id, clientToken) }
            return id
        }
        guard let id else {
            continuation.finish(throwing: MCPServerError.unavailable("the server is not running"))
            return .stream(stream)
        }
        message["id"] = JSON(id)
        if clientToken != nil { message["params"]?["_meta"]?["progressToken"] = JSON("sluice-\(id)") }
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.abandon(id, because: .timedOut)
        }
        continuation.onTermination = { [weak self] _ in
            timer.cancel()
            self?.abandon(id, because: nil)
        }
        write(message)
        return .stream(stream)
    }

    /// Forgets request `id` (and what was relayed on it); its entry, if it was still there.
    private static func remove(_ id: Int, from state: inout State) -> Pending? {
        guard let pending = state.pending.removeValue(forKey: id) else { return nil }
        if let token = pending.token { state.progress[token] = nil }
        // A request relayed on this call may belong to another call of the same session still in
        // flight (the transport does not say): that call keeps it answerable.
        if !pending.relays.isEmpty, let session = pending.session,
           let heir = state.pending.first(where: { $0.value.session == session })?.key {
            state.pending[heir]?.relays += pending.relays
            for relay in pending.relays { state.relays[relay]?.call = heir }
        } else {
            for relay in pending.relays { state.relays[relay] = nil }
        }
        return pending
    }

    /// Stops waiting for request `id` (timed out, or its client left) and tells the server.
    private func abandon(_ id: Int, because error: MCPServerError?) {
        guard let pending = state.withLockedValue({ Self.remove(id, from: &$0) }) else { return }
        write(JSONRPC.notification("notifications/cancelled", params: JSON(object: [
            ("requestId", JSON(id)), ("reason", JSON(error == nil ? "the client went away" : "timed out at the gateway")),
        ])))
        if let error { pending.continuation.finish(throwing: error) } else { pending.continuation.finish() }
    }

    /// A client cancelled its request `clientID`: the server is told under the gateway's id, and
    /// the call ends without an answer (MCP: a cancelled request is not answered). Only the
    /// session that sent the request can cancel it.
    private func cancel(clientID: JSON, session: String, reason: JSON?) {
        guard let found = state.withLockedValue({ state -> (id: Int, pending: Pending)? in
            guard let id = state.pending.first(where: { $0.value.session == session && $0.value.clientID == clientID })?.key,
                  let pending = Self.remove(id, from: &state) else { return nil }
            return (id, pending)
        }) else { return }
        var params: [(String, JSON)] = [("requestId", JSON(found.id))]
        if let reason { params.append(("reason", reason)) }
        write(JSONRPC.notification("notifications/cancelled", params: JSON(object: params)))
        found.pending.continuation.finish()
    }

    private func received(_ line: ArraySlice<UInt8>, from incarnation: Int) {
        guard let message = try? JSON.parse(Array(line)), message.isObject else {
            logger.debug("mcp stdio server wrote a line that is not JSON-RPC")
            return
        }
        guard state.withLockedValue({ $0.incarnation == incarnation }) else { return }
        switch MCPMessageKind(message) {
        case .response:
            guard let id = message["id"]?.int, let pending = state.withLockedValue({ Self.remove(id, from: &$0) }) else { return }
            var answer = message
            answer["id"] = pending.clientID
            pending.continuation.yield(answer)
            pending.continuation.finish()
        case .notification(let method) where method == "notifications/progress":
            guard let token = message["params"]?["progressToken"]?.string,
                  let found = state.withLockedValue({ state -> (Pending, JSON)? in
                      guard let entry = state.progress[token], let pending = state.pending[entry.id] else { return nil }
                      return (pending, entry.token)
                  }) else { return }
            var progress = message
            progress["params"]?["progressToken"] = found.1
            found.0.continuation.yield(progress)
        case .notification:
            broadcast(message)
        case .request(let method):
            let id = message["id"] ?? .null
            if let relayed = relay(id) {
                var request = message
                request["id"] = JSON("\(name)/\(relayed.token)")
                relayed.continuation.yield(request)
                return
            }
            // No one client to ask: the gateway answers what it can.
            switch method {
            case "ping": write(JSONRPC.result(id: id, .object()))
            case "roots/list": write(JSONRPC.result(id: id, JSON(object: [("roots", .array())])))
            default: write(JSONRPC.error(id: id, code: JSONRPC.methodNotFound, "\(method) is not available through the gateway"))
            }
        case .invalid:
            logger.debug("mcp stdio server wrote an invalid JSON-RPC message")
        }
    }

    /// Where the server's request `serverID` goes: the stream of the oldest call in flight whose
    /// client can answer it, under a fresh random token, when all such calls are one session's;
    /// `nil` when there is none, or when calls of several sessions are in flight (whose request it
    /// is cannot be known, and one client must never see another's).
    private func relay(_ serverID: JSON) -> (continuation: AsyncThrowingStream<JSON, any Error>.Continuation, token: String)? {
        state.withLockedValue { state in
            let open = state.pending.filter { $0.value.session != nil }
            guard Set(open.values.compactMap(\.session)).count == 1, let entry = open.min(by: { $0.key < $1.key }),
                  let session = entry.value.session, state.relays.count < Self.maxRelays else { return nil }
            let call = entry.key, pending = entry.value
            // 128 random bits: a client cannot guess another's token.
            let token = (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined(separator: "-")
            state.relays[token] = Relay(serverID: serverID, session: session, call: call)
            state.pending[call]?.relays.append(token)
            return (pending.continuation, token)
        }
    }

    // MARK: MCPServerConnection

    func open(version: String, capabilities: JSON, headers: HTTPHeaders) async throws(MCPServerError) -> (result: JSON, upstream: MCPSession.Upstream?) {
        guard let result = state.withLockedValue({ $0.initialized }) else { throw .unavailable("the server is not running") }
        return (result, nil)
    }

    func request(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String?) async throws(MCPServerError) -> MCPReply {
        guard state.withLockedValue({ $0.initialized != nil }) else { throw .unavailable("the server is not running") }
        let reply = send(message, session: session, timeout: timeout)
        // With a progress token the stream goes to the client at once; without one nothing but a
        // relayed request can come before the answer, and a whole answer is cheaper for the client.
        guard message["params"]?["_meta"]?["progressToken"] == nil, case .stream(let messages) = reply else { return reply }
        return try await MCPReply.whole(unlessMore: messages)
    }

    func notify(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String?) async {
        guard let method = message["method"]?.string, method != "notifications/initialized" else { return }
        // Its own `initialized` went at start; a cancellation names the client's id, which the
        // server never saw: it goes under the gateway's, and only for that client's request.
        if method == "notifications/cancelled" {
            if let session, let requestID = message["params"]?["requestId"] {
                cancel(clientID: requestID, session: session, reason: message["params"]?["reason"])
            }
            return
        }
        write(message)
    }

    func answer(_ response: JSON, token: String, upstream: MCPSession.Upstream?, headers: HTTPHeaders, session: String) async -> Bool {
        guard let relay = state.withLockedValue({ state -> Relay? in
            // Another session's token is as unknown as a made-up one, and stays waiting for its own.
            guard let relay = state.relays[token], relay.session == session else { return nil }
            state.relays[token] = nil
            state.pending[relay.call]?.relays.removeAll { $0 == token }
            return relay
        }) else { return false }
        var answer = response
        answer["id"] = relay.serverID
        write(answer)
        return true
    }

    func listen(upstream: MCPSession.Upstream?, headers: HTTPHeaders) async -> AsyncThrowingStream<JSON, any Error>? {
        let (stream, continuation) = AsyncThrowingStream<JSON, any Error>.makeStream()
        let key: Int? = state.withLockedValue { state in
            guard !state.isStopping else { return nil }
            state.nextListener += 1
            state.listeners[state.nextListener] = continuation
            return state.nextListener
        }
        guard let key else { return nil }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLockedValue { $0.listeners.removeValue(forKey: key) } }
        return stream
    }

    func close(upstream: MCPSession.Upstream?, headers: HTTPHeaders) async {}
}
