import Kernel
import NIOCore
import NIOHTTP1

/// Acme's in-house model server, which speaks Chat Completions only, behind its own tenant header:
///
///     "providers": { "acme": { "plugin": "acme-model-server", "config": {
///         "base_url": "http://models.acme.internal/v1", "tenant": { "env": "ACME_TENANT" } } } }
///
/// It declares Chat Completions as its one native operation; the Kernel translates `/v1/messages`
/// and `/v1/responses` requests to it and its answers back, whole and streamed, so Anthropic and
/// Responses clients reach it too without a line of translation here.
public struct AcmeModelServer: Provider {
    public static let name = "acme-model-server"
    public static let summary = "Acme's in-house model server (Chat Completions, tenant header)"

    public struct Settings: PluginSettings {
        @Setting("base_url", required: true, "the server's API root, e.g. http://models.acme.internal/v1") public var baseURL = ""
        @Setting("tenant", .secret, required: true, "sent as x-acme-tenant") public var tenant = ""
        @Setting("timeout_s", .number(min: 0.001), "longest wait for an answer (for streams: its first byte)") public var timeout = 60.0
        public init() {}
    }

    let url: String
    let tenant: String
    let timeout: Duration
    let upstream: UpstreamClient

    public init(settings: Settings, context: PluginContext) throws {
        guard settings.baseURL.hasPrefix("http://") || settings.baseURL.hasPrefix("https://") else {
            throw context.configError("base_url", "expected an http:// or https:// URL")
        }
        url = settings.baseURL + "/chat/completions"
        tenant = settings.tenant
        timeout = .seconds(settings.timeout)
        upstream = context.upstream
    }

    public var nativeOperations: Set<APIOperation> { [.chatCompletions] }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse {
        let request = call.request
        var body = request.body
        body.replaceMember("model", with: call.upstreamModel)
        // The usage comes in a last chunk only when asked for; a client that did not ask does not see it.
        let clientAskedForUsage = body.json["stream_options"]?["include_usage"]?.bool == true
        if request.stream, !clientAskedForUsage { body.json["stream_options"] = ["include_usage": true] }
        var headers: HTTPHeaders = ["content-type": "application/json", "x-acme-tenant": tenant]
        headers.add(contentsOf: call.headers)
        let limit = min(timeout, call.timeout)
        let upstreamRequest = UpstreamRequest(url: url, headers: headers, body: body.bytes(allocator: request.context.allocator),
                                              timeouts: UpstreamTimeouts(firstByte: limit, total: request.stream ? nil : limit))
        guard request.stream else {
            let answer = try await upstream.send(upstreamRequest)
            guard answer.status == 200 else { throw UpstreamFailure.error(status: answer.status, headers: answer.headers, body: answer.body) }
            request.context.setUsage(from: answer.body) { Usage(openAI: JSON.member("usage", in: $0)) }
            return GatewayResponse(status: .ok, headers: ["content-type": "application/json"], body: .whole(answer.body))
        }
        let answer = try await upstream.stream(upstreamRequest)
        guard answer.status == 200 else {
            throw UpstreamFailure.error(status: answer.status, headers: answer.headers, body: try await answer.collect())
        }
        let context = request.context
        let events = EventStream(serverSentEventsOf: answer.body).rewriting { event in
            guard event.data.contains("prompt_tokens"), let json = event.json, let usage = Usage(openAI: json["usage"]) else { return event }
            context.usage = usage
            return clientAskedForUsage || json["choices"]?.count != 0 ? event : nil
        }
        return GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream"], body: .events(events))
    }
}
