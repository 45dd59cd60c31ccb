import Kernel
import NIOCore

/// Keeps Responses API answers, so that `previous_response_id` continues a conversation on every
/// provider — translated ones included, since the earlier turns are expanded into the request
/// before routing — and serves `GET`/`DELETE /v1/responses/{id}` and
/// `GET /v1/responses/{id}/input_items` to the key that created the response (404 to any other).
/// An id the store does not know is left for a provider that keeps responses itself.
public struct ResponseStore: Middleware {
    public static let name = "response-store"
    public static let summary = "keeps Responses answers: previous_response_id on every provider, GET/DELETE /v1/responses/{id}"

    public struct Settings: PluginSettings {
        @Setting("redis_url", "redis://[:password@]host:port/db to share stored responses between replicas; absent: in this process")
        public var redisURL: String?
        @Setting("ttl_s", .number(min: 1), "how long a response is kept") public var ttl = 2_592_000.0
        @Setting("max_bytes", .positiveInteger, "size of the in-memory store (least recently used responses go first)")
        public var maxBytes = 268_435_456
        public init() {}
    }

    let store: any ExpiringStore
    let ttl: Duration
    static let keyPrefix = "sluice:response:"

    public init(settings: Settings, context: PluginContext) throws {
        if let url = settings.redisURL {
            guard let endpoint = RedisEndpoint(url: url) else { throw context.configError("redis_url", "expected redis://[:password@]host[:port][/db]") }
            store = RedisExpiringStore(redis: RedisClient(endpoint))
        } else {
            store = MemoryExpiringStore(maxBytes: settings.maxBytes)
        }
        ttl = .seconds(settings.ttl)
    }

    public func shutdown() async { await store.shutdown() }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        switch request.operation {
        case .responses: try await create(request, next: next)
        case .storedResponse, .deleteStoredResponse, .storedResponseInputItems: try await serveStored(request)
        default: try await next(request)
        }
    }

    // MARK: A new response

    // The conversation is loaded, and the answer kept, in functions of their own: this frame
    // lives as long as the request waits for its provider (docs/ARCHITECTURE.md, "Threads and
    // tasks": async frames).
    private func create(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        let turn = try await turn(of: request)
        let response = try await next(turn.request)
        guard response.status == .ok else { return response }
        return await kept(response, turn: turn, context: request.context)
    }

    /// A request with the conversation it continues put in, and what keeping its answer needs.
    private struct Turn {
        var request: GatewayRequest
        var owner: String
        var input: [JSON]
        var continued: String?
        var stores: Bool
    }

    @inline(never)
    private func turn(of request: GatewayRequest) async throws -> Turn {
        let owner = request.context.identity?.name ?? ""
        var request = request
        var continued: String?
        var conversation: [JSON]?
        if let previousID = request.body.member("previous_response_id")?.string, let previous = try await load(previousID, owner: owner) {
            continued = previousID
            let whole = previous.conversation + StoredResponse.items(request.body.member("input")?.json)
            conversation = whole
            request.body.replaceMember("input", with: JSON(array: whole))
            request.body.replaceMember("previous_response_id", with: nil)
        }
        let input = conversation ?? StoredResponse.items(request.body.member("input")?.json)
        return Turn(request: request, owner: owner, input: input, continued: continued, stores: request.body.member("store")?.bool != false)
    }

    @inline(never)
    private func kept(_ response: GatewayResponse, turn: Turn, context: RequestContext) async -> GatewayResponse {
        var response = response
        // The provider saw the whole conversation instead of the id; the answer names it as OpenAI's would.
        if let continued = turn.continued { response = Self.naming(continued, in: response, allocator: context.allocator) }
        guard turn.stores else { return response }
        let logger = context.logger, owner = turn.owner, input = turn.input
        let save: @Sendable (JSON) async -> Void = { [store, ttl] answer in
            guard let id = answer["id"]?.string else { return }
            let record = StoredResponse(owner: owner, input: input, response: answer)
            do {
                try await store.set(Self.keyPrefix + id, Array(record.json.encoded()), ttl: ttl)
            } catch {
                logger.warning("response-store could not keep a response", metadata: ["error": "\(error)"])
            }
        }
        switch response.body {
        case .whole(let bytes):
            if let answer = try? JSON.parse(bytes), answer.isObject { await save(answer) }
        case .events(let events):
            // The completed response is kept before its event reaches the client, who may
            // continue the conversation the moment it arrives.
            response.body = .events(EventStream(KeepingCompleted(events: events, save: save)))
        }
        return response
    }

    /// The answer with `previous_response_id` set: in a whole Response, and in the stream events
    /// that carry the Response (created, in progress, completed…).
    static func naming(_ previousID: String, in response: GatewayResponse, allocator: ByteBufferAllocator) -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole(let bytes):
            guard var answer = try? JSON.parse(bytes), answer.isObject else { return response }
            answer["previous_response_id"] = JSON(previousID)
            response.body = .whole(answer.encoded(using: allocator))
        case .events(let events):
            response.body = .events(events.rewriting { event in
                guard event.event?.hasPrefix("response.") == true, event.dataContains("\"previous_response_id\""),
                      var json = event.json, json["response"]?.isObject == true else { return event }
                json["response"]?["previous_response_id"] = JSON(previousID)
                return SSEEvent(event: event.event, data: json.description)
            })
        }
        return response
    }

    // MARK: Stored responses

    private func serveStored(_ request: GatewayRequest) async throws -> GatewayResponse {
        let parts = request.path.split(separator: "/")
        let id = String(parts[2])
        let owner = request.context.identity?.name ?? ""
        guard let record = try await load(id, owner: owner) else {
            throw GatewayError(.notFound, type: "invalid_request_error", "Response with id '\(id)' not found.", code: "response_not_found")
        }
        let allocator = request.context.allocator
        switch request.operation {
        case .deleteStoredResponse:
            do { try await store.delete(Self.keyPrefix + id) } catch { throw Self.unavailable(error) }
            return .json(["id": JSON(id), "object": "response", "deleted": true], allocator: allocator)
        case .storedResponseInputItems:
            return .json(try InputItemsPage(record.input, query: request.uri).json, allocator: allocator)
        default:
            return .json(record.response, allocator: allocator)
        }
    }

    /// The record of `id` when `owner` created it.
    private func load(_ id: String, owner: String) async throws -> StoredResponse? {
        let bytes: [UInt8]?
        do { bytes = try await store.get(Self.keyPrefix + id) } catch { throw Self.unavailable(error) }
        guard let bytes, let json = try? JSON.parse(bytes), let record = StoredResponse(json: json), record.owner == owner else { return nil }
        return record
    }

    private static func unavailable(_ error: any Error) -> GatewayError {
        GatewayError(.serviceUnavailable, type: "server_error", "the response store is unavailable; retry shortly", code: "response_store_unavailable")
    }
}

/// A Responses stream that hands its `response.completed` response to `save`, and waits for it,
/// before passing the event on.
struct KeepingCompleted: AsyncSequence, Sendable {
    typealias Element = SSEEvent
    let events: EventStream
    let save: @Sendable (JSON) async -> Void

    func makeAsyncIterator() -> Iterator { Iterator(events: events.makeAsyncIterator(), save: save) }

    struct Iterator: AsyncIteratorProtocol {
        var events: EventStream.Iterator
        let save: @Sendable (JSON) async -> Void

        mutating func next() async throws -> SSEEvent? {
            guard let event = try await events.next() else { return nil }
            if event.event == "response.completed", let response = event.json?["response"], response.isObject { await save(response) }
            return event
        }
    }
}
