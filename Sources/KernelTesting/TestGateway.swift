import Kernel
import Logging
import NIOCore
import NIOHTTP1

/// A manifest's gateway in-process, without sockets: build it from manifest text and a registry,
/// send requests, read answers (streams collected into events). What plugin tests use.
///
///     var registry = Builtins.registry()
///     registry.register(ScriptedProvider.self)
///     let gateway = try await TestGateway(manifest: #"{ "providers": {…}, "models": {…}, "pipeline": […] }"#, registry: registry)
///     let answer = try await gateway.chat(model: "m", "hello", headers: ["authorization": "Bearer k"])
///     #expect(gateway.calls.last?.upstreamModel == "upstream-m")
public struct TestGateway: Sendable {
    public let generation: GatewayGeneration
    /// The manifest's state database, when it names one.
    public let stateDatabase: GatewayStateDatabase
    /// The generation's background work (cache saves, rate-limit settles, probes).
    public let background: BackgroundWork
    /// Run `background` and the state database's own work. A `Gateway` runs them as child tasks
    /// of its `run`; a test gateway has no such scope (tests build it, use it, and call
    /// `shutdown`), so they run in tasks of their own, which `shutdown` ends and waits for.
    private let runner: Task<Void, Never>
    private let databaseRunner: Task<Void, Never>
    let logger: Logger

    public init(manifest: String, registry: PluginRegistry, environment: [String: String] = [:],
                logger: Logger = Logger(label: "test")) async throws {
        let checked = try ManifestReader(registry: registry, environment: environment).read(Array(manifest.utf8), file: "test.json")
        let background = BackgroundWork()
        let stateDatabase = GatewayStateDatabase()
        let runner = Task { await background.run() }
        let databaseRunner = Task { await stateDatabase.run() }
        do {
            try await stateDatabase.open(for: checked, logger: logger)
            generation = try await GatewayGeneration.build(checked, upstream: TestGateway.upstream, background: background, registry: registry,
                                                           environment: environment, logger: logger, database: stateDatabase.current)
        } catch {
            background.finish()
            await runner.value
            await stateDatabase.close()
            await databaseRunner.value
            throw error
        }
        self.stateDatabase = stateDatabase
        self.background = background
        self.runner = runner
        self.databaseRunner = databaseRunner
        self.logger = logger
    }

    /// One upstream client for all test gateways (a thread each would add up).
    static let upstream = UpstreamClient()

    /// Sends a request; a stream is read to its end.
    public func send(_ method: HTTPMethod = .POST, _ path: String, body: JSON? = nil, headers: HTTPHeaders = [:]) async throws -> TestResponse {
        let bytes = body.map { $0.encoded(using: ByteBufferAllocator()) } ?? ByteBuffer()
        let response = await generation.respond(method: method, uri: path, headers: headers, body: bytes, logger: logger)
        switch response.body {
        case .whole(let buffer):
            return TestResponse(status: response.status, headers: response.headers, body: try? JSON.parse(buffer),
                                bodyText: String(buffer: buffer), events: nil)
        case .events(let stream):
            var events: [SSEEvent] = []
            for try await event in stream { events.append(event) }
            return TestResponse(status: response.status, headers: response.headers, body: nil, bodyText: nil, events: events)
        }
    }

    /// A one-message OpenAI chat request.
    public func chat(model: String, _ text: String, stream: Bool = false, headers: HTTPHeaders = [:]) async throws -> TestResponse {
        let body: JSON = ["model": JSON(model), "stream": JSON(stream), "messages": [["role": "user", "content": JSON(text)]]]
        return try await send(.POST, "/v1/chat/completions", body: body, headers: headers)
    }

    /// Shuts the generation down, lets its background work finish, then closes the database, as
    /// a `Gateway` does after its drain.
    public func shutdown() async {
        await generation.shutdown()
        background.finish()
        await runner.value
        await stateDatabase.close()
        await databaseRunner.value
    }

    /// Every call this gateway's scripted providers received, oldest first.
    public var calls: [ProviderCall] {
        generation.providers.values.compactMap { ($0 as? ScriptedProvider)?.calls.timed }.joined()
            .sorted { $0.at < $1.at }.map(\.call)
    }

    /// The calls the scripted provider named `provider` in the manifest received, oldest first.
    public func calls(to provider: String) -> [ProviderCall] {
        (generation.providers[provider] as? ScriptedProvider)?.calls.all ?? []
    }
}

/// An answer as a test sees it.
public struct TestResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    /// A whole JSON answer.
    public var body: JSON?
    /// A whole answer's text, JSON or not (`GET /metrics`).
    public var bodyText: String?
    /// A stream's events, in order.
    public var events: [SSEEvent]?

    /// The text of an OpenAI answer, whole or streamed.
    public var text: String {
        if let body { return body["choices"]?[0]?["message"]?["content"]?.string ?? "" }
        return (events ?? []).compactMap { $0.json?["choices"]?[0]?["delta"]?["content"]?.string }.joined()
    }

    /// The OpenAI `error` object of a refusal.
    public var error: JSON? { body?["error"] }
}
