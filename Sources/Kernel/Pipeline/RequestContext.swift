import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Per-request state shared by every copy of a `GatewayRequest`: identity, timing, a logger
/// tagged with the request id, and typed storage for plugins.
public final class RequestContext: Sendable {
    public let requestID: String
    public let receivedAt: ContinuousClock.Instant
    private let gatewayLogger: Logger
    public let allocator: ByteBufferAllocator
    /// The front door's authentication verdicts, one per authenticator of the pipeline, in order.
    let authentication: [Result<CallerIdentity, GatewayError>]
    /// Every key the manifest accepts: a value to hide wherever it appears.
    public let credentials: KnownCredentials
    private let state = NIOLockedValueBox(State())

    private struct State {
        var identity: CallerIdentity?
        var usage: Usage?
        /// A whole answer whose usage is not read yet, and how to read it (`setUsage(from:read:)`).
        var unreadUsage: (answer: ByteBuffer, read: @Sendable (ByteBuffer) -> Usage?)?
        var facts = RequestFacts()
        var attemptTracer: (any AttemptTracer)?
        var storage: [ObjectIdentifier: any Sendable] = [:]

        /// `usage`, read from the answer first if that is still to do.
        mutating func readUsage() -> Usage? {
            if let unread = unreadUsage {
                usage = unread.read(unread.answer)
                unreadUsage = nil
            }
            return usage
        }
    }

    public convenience init(requestID: String, logger: Logger, allocator: ByteBufferAllocator = ByteBufferAllocator(),
                receivedAt: ContinuousClock.Instant = .now) {
        self.init(requestID: requestID, logger: logger, allocator: allocator, receivedAt: receivedAt, authentication: [],
                  credentials: .none)
    }

    init(requestID: String, logger: Logger, allocator: ByteBufferAllocator, receivedAt: ContinuousClock.Instant = .now,
         authentication: [Result<CallerIdentity, GatewayError>], credentials: KnownCredentials) {
        self.authentication = authentication
        self.credentials = credentials
        self.requestID = requestID
        self.receivedAt = receivedAt
        gatewayLogger = logger
        self.allocator = allocator
    }

    /// The gateway's logger, tagged with the request id. Made when asked for (a failure, a
    /// warning), not kept: a tagged logger holds a metadata dictionary, for the life of a stream.
    public var logger: Logger {
        var logger = gatewayLogger
        logger[metadataKey: "request_id"] = .string(requestID)
        return logger
    }

    /// Who is calling, as established by an auth plugin; `nil` before (or without) auth.
    public var identity: CallerIdentity? {
        get { state.withLockedValue { $0.identity } }
        set { state.withLockedValue { $0.identity = newValue } }
    }

    /// Token usage of the answer, as the provider reported it (set when a whole answer arrives
    /// or when a stream reports it, before the stream's last event reaches outer middlewares).
    public var usage: Usage? {
        get { state.withLockedValue { $0.readUsage() } }
        set { state.withLockedValue { $0.usage = newValue; $0.unreadUsage = nil } }
    }

    /// The usage `read` finds in a whole `answer`, read when a stage first asks for `usage`
    /// (under this context's lock, which only this request's stages take): a pipeline where no
    /// stage wants usage does not scan the answer for it.
    public func setUsage(from answer: ByteBuffer, read: @escaping @Sendable (ByteBuffer) -> Usage?) {
        state.withLockedValue { $0.usage = nil; $0.unreadUsage = (answer, read) }
    }

    /// What happened to the request so far (provider, attempts, timings, price).
    public var facts: RequestFacts {
        get { state.withLockedValue { $0.facts } }
        set { state.withLockedValue { $0.facts = newValue } }
    }

    /// Changes the facts in place (one lock, however many fields).
    public func recordFacts(_ change: (inout RequestFacts) -> Void) {
        state.withLockedValue { change(&$0.facts) }
    }

    /// The cost of the answer in US dollars, when both its usage and a price are known.
    public var cost: Double? {
        state.withLockedValue { state in state.readUsage().flatMap { usage in state.facts.price.map { $0.cost(of: usage) } } }
    }

    /// Opens spans around upstream attempts, when a tracing plugin runs.
    public var attemptTracer: (any AttemptTracer)? {
        get { state.withLockedValue { $0.attemptTracer } }
        set { state.withLockedValue { $0.attemptTracer = newValue } }
    }

    /// The verdict the front door reached for the pipeline's authenticator at `index`, before
    /// the body was read; `nil` for a request built without one.
    func authentication(at index: Int) -> Result<CallerIdentity, GatewayError>? {
        index < authentication.count ? authentication[index] : nil
    }

    /// Typed per-request storage: `context[MyKey.self] = value`.
    public subscript<Key: RequestStorageKey>(key: Key.Type) -> Key.Value? {
        get { state.withLockedValue { $0.storage[ObjectIdentifier(key)] as? Key.Value } }
        set { state.withLockedValue { $0.storage[ObjectIdentifier(key)] = newValue } }
    }
}

/// A key for `RequestContext` storage; the type itself is the key.
public protocol RequestStorageKey {
    associatedtype Value: Sendable
}

/// The authenticated caller.
public struct CallerIdentity: Sendable, Equatable {
    /// The key's name from the manifest (never the key itself).
    public var name: String
    /// Public models this caller may use; `nil` means all.
    public var allowedModels: Set<String>?
    /// The team the key belongs to (a managed key's), for budgets and the spend ledger.
    public var team: String?
    /// Globs over MCP tools named `{server}__{tool}` this caller may list and call; `nil` means all.
    public var allowedTools: [ToolPattern]?
    /// What this caller's guardrails differ in from the manifest's (none: the manifest's as they are).
    public var guardrails: GuardrailOverrides

    public init(name: String, allowedModels: Set<String>?, team: String? = nil, allowedTools: [ToolPattern]? = nil,
                guardrails: GuardrailOverrides = .none) {
        self.name = name
        self.allowedModels = allowedModels
        self.team = team
        self.allowedTools = allowedTools
        self.guardrails = guardrails
    }

    public func allows(model: String) -> Bool { allowedModels?.contains(model) ?? true }

    /// Whether the caller may see and call the MCP tool `qualifiedName` (`{server}__{tool}`).
    public func allows(tool qualifiedName: String) -> Bool {
        allowedTools?.contains { $0.matches(qualifiedName) } ?? true
    }
}
