extension Provider {
    /// What the router calls: `send`, with the request translated to an operation this provider
    /// speaks natively and its answer translated back to the client's.
    ///
    /// The translated way waits in a function of its own, and the work around the waits is
    /// synchronous: these frames live as long as the request waits for its provider
    /// (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
    public func answer(_ call: ProviderCall) async throws -> GatewayResponse {
        let translation = try translation(for: call)
        guard !translation.steps.isEmpty else { return try await send(call) }
        return try await answer(call, translatedBy: translation)
    }

    @inline(never)
    private func translation(for call: ProviderCall) throws -> Translation {
        let operation = call.request.operation
        guard let translation = Translation.route(from: operation, to: nativeOperations(for: call.upstreamModel)) else {
            throw GatewayError.invalidRequest("this model's provider does not serve \(operation.rawValue) requests")
        }
        return translation
    }

    @inline(never)
    private func answer(_ call: ProviderCall, translatedBy translation: Translation) async throws -> GatewayResponse {
        var translated = call
        let asked: [JSON]
        (translated.request, asked) = try translation.request(call.request, upstreamModel: call.upstreamModel)
        let response = try await send(translated)
        return try translation.answer(response, asked: asked, allocator: call.request.context.allocator)
    }
}
