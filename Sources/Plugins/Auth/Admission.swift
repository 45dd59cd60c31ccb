import Kernel

/// What every auth plugin does once it knows the caller: records the identity (also for a
/// refusal, so logs and metrics name the caller), refuses a model outside the caller's
/// allowlist, and passes the request on without the client's credentials.
enum Admission {
    /// Headers a client credential may arrive in; never forwarded upstream.
    static let credentialHeaders = ["authorization", "x-api-key", "api-key"]

    static func admit(_ identity: CallerIdentity, describedAs caller: String, _ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        request.context.identity = identity
        if request.operation != .listModels, !request.model.isEmpty, !identity.allows(model: request.model) {
            throw GatewayError.permission("\(caller) may not use the model `\(request.model)`.")
        }
        var forwarded = request
        for header in credentialHeaders { forwarded.headers.remove(name: header) }
        return try await next(forwarded)
    }
}
