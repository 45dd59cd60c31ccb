//  How a request flows (the onion model; the chain is folded once, when a manifest is loaded):
//
//    client ─▶ Server ─▶ FrontDoor (route, parse JSON once, request id)
//                           │
//                           ▼
//             pipeline[0].handle ─▶ pipeline[1].handle ─▶ … ─▶ router (terminal)
//                                                                  │ ProviderCall
//                                                                  ▼
//                                                     Provider.send ─▶ UpstreamClient (libcurl)
//
//  Responses travel back out through the same middlewares, whole or as an EventStream that each
//  may observe or rewrite event by event.

/// A manifest's pipeline, folded into one function.
public struct Pipeline: Sendable {
    public let middlewares: [any Middleware]
    public let handle: Next

    public init(_ middlewares: [any Middleware]) {
        self.middlewares = middlewares
        let end: Next = { _ in throw GatewayError.internalError("the pipeline ended without a terminal plugin") }
        handle = middlewares.reversed().reduce(end) { next, middleware in
            { request in try await middleware.handle(request, next: next) }
        }
    }
}
