import Logging
import NIOConcurrencyHelpers
import NIOHTTP1

/// A server the gateway starts as a child process and speaks to over stdin/stdout. One process
/// serves every client session: the gateway initializes it once, renumbers each request (and its
/// progress token) so that clients cannot collide, and hands each answer back under the client's
/// own id. A process that exits is started again after a delay that doubles up to
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
    }

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
        let initialize = JSONRPC.request(id: "init", method: "initialize", params: JSON(object: [
            ("protocolVersion", JSON(MCPVersions.latest)), ("capabilities", .object()),
            ("clientInfo", JSON(object: [("name", "sluice"), ("version", JSON(MCPGateway.version))])),
        ]))
        do {
            let response = try await send(initialize).response()
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

    /// Sends a request under a gateway id; the stream yields its progress and then its answer,
    /// both under the caller's id and token.
    private func send(_ message: JSON) -> MCPReply {
        var message = message
        let clientToken = message["params"]?["_meta"]?["progressToken"]
        let (stream, continuation) = AsyncThrowingStream<JSON, any Error>.makeStream()
        let id: Int? = state.withLockedValue { state in
            guard let process = state.process, !state.isStopping else { return nil }
            _ = process
            let id = state.nextID
            state.nextID += 1
            let token = clientToken.map { _ in "sluice-\(id)" }
            state.pending[id] = Pending(continuation: continuation, clientID: message["id"] ?? .null, token: token)
            if let token, let clientToken { state.progress[token] = (id, clientToken) }
            return id
        }
        guard let id else {
            continuation.finish(throwing: MCPServerError.unavailable("the server is not running"))
            return .stream(stream)
        }
        message["id"] = JSON(id)
        if clientToken != nil { message["params"]?["_meta"]?["progressToken"] = JSON("sluice-\(id)") }
        let timeout = timeout
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

    /// Stops waiting for request `id` (timed out, or its client left) and tells the server.
    private func abandon(_ id: Int, because error: MCPServerError?) {
        guard let pending = state.withLockedValue({ state -> Pending? in
            guard let pending = state.pending.removeValue(forKey: id) else { return nil }
            if let token = pending.token { state.progress[token] = nil }
            return pending
        }) else { return }
        write(JSONRPC.notification("notifications/cancelled", params: JSON(object: [
            ("requestId", JSON(id)), ("reason", JSON(error == nil ? "the client went away" : "timed out at the gateway")),
        ])))
        if let error { pending.continuation.finish(throwing: error) } else { pending.continuation.finish() }
    }

    private func received(_ line: ArraySlice<UInt8>, from incarnation: Int) {
        guard let message = try? JSON.parse(Array(line)), message.isObject else {
            logger.debug("mcp stdio server wrote a line that is not JSON-RPC")
            return
        }
        guard state.withLockedValue({ $0.incarnation == incarnation }) else { return }
        switch MCPMessageKind(message) {
        case .response:
            guard let id = message["id"]?.int,
                  let pending = state.withLockedValue({ state -> Pending? in
                      guard let pending = state.pending.removeValue(forKey: id) else { return nil }
                      if let token = pending.token { state.progress[token] = nil }
                      return pending
                  }) else { return }
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
            // The server asks the gateway, which has no one client to ask: it answers what it can.
            let id = message["id"] ?? .null
            switch method {
            case "ping": write(JSONRPC.result(id: id, .object()))
            case "roots/list": write(JSONRPC.result(id: id, JSON(object: [("roots", .array())])))
            default: write(JSONRPC.error(id: id, code: JSONRPC.methodNotFound, "\(method) is not available through the gateway"))
            }
        case .invalid:
            logger.debug("mcp stdio server wrote an invalid JSON-RPC message")
        }
    }

    // MARK: MCPServerConnection

    func open(version: String, headers: HTTPHeaders) async throws(MCPServerError) -> (result: JSON, upstream: MCPSession.Upstream?) {
        guard let result = state.withLockedValue({ $0.initialized }) else { throw .unavailable("the server is not running") }
        return (result, nil)
    }

    func request(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders) async throws(MCPServerError) -> MCPReply {
        guard state.withLockedValue({ $0.initialized != nil }) else { throw .unavailable("the server is not running") }
        let reply = send(message)
        // Without a progress token nothing precedes the answer: a whole answer is cheaper for the client.
        if message["params"]?["_meta"]?["progressToken"] == nil { return .message(try await reply.response()) }
        return reply
    }

    func notify(_ message: JSON, upstream: MCPSession.Upstream?, headers: HTTPHeaders) async {
        // Its own `initialized` went at start; a cancellation names a client id the server never saw.
        guard let method = message["method"]?.string, method != "notifications/initialized", method != "notifications/cancelled" else { return }
        write(message)
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
