//  How a request flows (the onion model; the chain is folded once, when a manifest is loaded):
//
//    client ─▶ Server ─▶ FrontDoor (route, authenticate from the head, parse JSON once, request id)
//                           │
//                           ▼
//             pipeline[0].handle ─▶ pipeline[1].handle ─▶ … ─▶ router (terminal)
//                                                                  │ ProviderCall
//                                                                  ▼
//                                                     Provider.send ─▶ UpstreamClient (NIO or libcurl)
//
//  Responses travel back out through the same middlewares, whole or as an EventStream that each
//  may observe or rewrite event by event.

/// A manifest's pipeline, folded into one function.
public struct Pipeline: Sendable {
    public let middlewares: [any Middleware]
    /// The pipeline's authenticators, in order: the front door asks them before reading a body.
    public let authenticators: [any Authenticator]
    public let handle: Next

    /// `end` answers what passes the last middleware: the Kernel's MCP gateway ends a pipeline of
    /// the same middlewares without the terminal one.
    public init(_ middlewares: [any Middleware],
                end: @escaping Next = { _ in throw GatewayError.internalError("the pipeline ended without a terminal plugin") }) {
        self.middlewares = middlewares
        let authenticators = middlewares.compactMap { $0 as? any Authenticator }
        self.authenticators = authenticators
        var ordinal = authenticators.count
        handle = middlewares.reversed().reduce(end) { next, middleware in
            guard let authenticator = middleware as? any Authenticator else {
                return { request in try await middleware.handle(request, next: next) }
            }
            // The verdict the front door reached before the body was read, delivered here.
            ordinal -= 1
            let index = ordinal
            return { request in
                guard let admitted = try Self.admitted(request, by: authenticator, at: index) else {
                    return try await authenticator.handle(request, next: next)
                }
                return try await next(admitted)
            }
        }
    }

    /// The request as the front door's verdict lets it go on; nil when it reached no verdict.
    @inline(never)
    private static func admitted(_ request: GatewayRequest, by authenticator: any Authenticator, at index: Int) throws -> GatewayRequest? {
        guard let verdict = request.context.authentication(at: index) else { return nil }
        return try authenticator.admitted(request, as: verdict.get())
    }
}
