extension Provider {
    /// What the router calls: `send`, with the request translated to an operation this provider
    /// speaks natively and its answer translated back to the client's.
    public func answer(_ call: ProviderCall) async throws -> GatewayResponse {
        let request = call.request
        guard let translation = Translation.route(from: request.operation, to: nativeOperations(for: call.upstreamModel)) else {
            throw GatewayError.invalidRequest("this model's provider does not serve \(request.operation.rawValue) requests")
        }
        guard !translation.steps.isEmpty else { return try await send(call) }
        var translated = call
        let asked: [JSON]
        (translated.request, asked) = try translation.request(request, upstreamModel: call.upstreamModel)
        let response = try await send(translated)
        return try translation.answer(response, asked: asked, allocator: request.context.allocator)
    }
}
