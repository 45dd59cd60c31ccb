import NIOHTTP1

/// A pipeline stage that establishes who is calling (`api-key-auth`, `jwt-auth`).
///
/// The front door asks every authenticator of the pipeline before the request's body is read
/// or parsed, so an unauthenticated caller costs the gateway a header check and nothing more:
/// `screen` runs on the event loop as the request's head arrives, and `verify` finishes what
/// `screen` left undecided (a signature) before the body is parsed. The verdict is delivered at
/// the authenticator's own place in the pipeline: a refusal is thrown there, so that the stages
/// before it (an access log, metrics) still see it, though with no body; an identity is admitted
/// there (see `admit`). docs/ARCHITECTURE.md, "Authentication before the body".
public protocol Authenticator: Middleware {
    /// Decides from the headers alone, cheaply: it runs on the connection's event loop.
    func screen(_ headers: HTTPHeaders) -> AuthVerdict
    /// Decides what `screen` left `.undecided`; runs before the body is parsed.
    func verify(_ headers: HTTPHeaders) async throws -> CallerIdentity
    /// How a refusal names the caller: "The key `ci`".
    func describe(_ identity: CallerIdentity) -> String
    /// The keys it accepts, as digests, for logs to hide wherever a client puts them (none for
    /// an authenticator without a fixed set of keys).
    var credentialDigests: [KeyDigest] { get }
}

/// What an authenticator made of a request's headers.
public enum AuthVerdict: Sendable {
    case identified(CallerIdentity)
    case refused(GatewayError)
    /// `verify` must decide (work too slow for the event loop).
    case undecided
}

extension Authenticator {
    public func verify(_ headers: HTTPHeaders) async throws -> CallerIdentity {
        throw GatewayError.internalError("\(Self.name) left a request undecided but cannot verify it")
    }

    public func describe(_ identity: CallerIdentity) -> String { "The caller `\(identity.name)`" }

    public var credentialDigests: [KeyDigest] { [] }

    /// For a request that reaches the stage without a verdict (one built in-process): decides now.
    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        let identity = try await identify(request.headers)
        return try await next(admitted(request, as: identity))
    }

    /// `screen`, then `verify` when needed.
    @inline(never)
    public func identify(_ headers: HTTPHeaders) async throws -> CallerIdentity {
        switch screen(headers) {
        case .identified(let identity): return identity
        case .refused(let error): throw error
        case .undecided: return try await verify(headers)
        }
    }

    /// Records the caller (a refusal still names it in logs and metrics), refuses a model outside
    /// its allowlist, and passes the request on without the client's credentials.
    public func admit(_ request: GatewayRequest, as identity: CallerIdentity, next: Next) async throws -> GatewayResponse {
        try await next(admitted(request, as: identity))
    }

    /// `admit`'s work before the request goes on: the request as it goes on. Synchronous, and not
    /// inlined: the async frames of a request's path live as long as it waits for its provider
    /// (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    @inline(never)
    func admitted(_ request: GatewayRequest, as identity: CallerIdentity) throws -> GatewayRequest {
        request.context.identity = identity
        if request.operation != .listModels, !request.model.isEmpty, !identity.allows(model: request.model) {
            throw GatewayError.permission("\(describe(identity)) may not use the model `\(request.model)`.")
        }
        var forwarded = request
        forwarded.headers = request.headers.withoutCredentials
        return forwarded
    }
}
