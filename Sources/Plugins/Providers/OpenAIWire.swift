import Kernel
import NIOCore
import NIOHTTP1

/// Sending a request in the OpenAI wire format and reading the answer back.
enum OpenAIWire {
    /// `GET /models`: any HTTP answer below 500 means the server is there (a 401 says the key is
    /// wrong, which the detail shows).
    static func probe(settings: OpenAIProviderSettings, upstream: UpstreamClient) async -> ProbeResult {
        var headers: HTTPHeaders = ["accept": "application/json"]
        if let apiKey = settings.apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        for (name, value) in settings.headers { headers.replaceOrAdd(name: name, value: value) }
        let request = UpstreamRequest(method: .GET, url: settings.baseURL + "/models", headers: headers,
                                      timeouts: UpstreamTimeouts(connect: .seconds(2), firstByte: .seconds(5), total: .seconds(5)))
        do {
            let response = try await upstream.send(request)
            return ProbeResult(isUp: response.status < 500, detail: "HTTP \(response.status)")
        } catch {
            return ProbeResult(isUp: false, detail: String(describing: error))
        }
    }

    static func send(_ call: ProviderCall, settings: OpenAIProviderSettings, upstream: UpstreamClient) async throws -> GatewayResponse {
        let request = call.request
        let path: String
        switch request.operation {
        case .chatCompletions: path = "/chat/completions"
        case .embeddings: path = "/embeddings"
        default:
            throw GatewayError.invalidRequest("this provider does not serve \(request.operation.rawValue) requests")
        }

        var body = request.body
        if body.json["model"]?.string != call.upstreamModel { body.json["model"] = JSON(call.upstreamModel) }

        var headers: HTTPHeaders = [
            "content-type": "application/json",
            "accept": request.stream ? "text/event-stream" : "application/json",
            "x-request-id": request.context.requestID,
        ]
        if let apiKey = settings.apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        for (name, value) in settings.headers { headers.replaceOrAdd(name: name, value: value) }

        let timeout = min(settings.timeout, call.timeout)
        var upstreamRequest = UpstreamRequest(
            url: settings.baseURL + path, headers: headers, body: body.bytes(allocator: request.context.allocator),
            timeouts: UpstreamTimeouts(connect: settings.connectTimeout, firstByte: timeout, total: request.stream ? nil : timeout))

        if request.stream {
            upstreamRequest.headers.replaceOrAdd(name: "accept", value: "text/event-stream")
            let response = try await upstream.stream(upstreamRequest)
            guard (200..<300).contains(response.status) else {
                throw UpstreamFailure.error(status: response.status, headers: response.headers, body: try await response.collect())
            }
            return GatewayResponse(status: .ok, headers: ["content-type": "text/event-stream"],
                                   body: .events(EventStream(SSEEventSequence(response.body))))
        }
        let response = try await upstream.send(upstreamRequest)
        guard (200..<300).contains(response.status) else {
            throw UpstreamFailure.error(status: response.status, headers: response.headers, body: response.body)
        }
        let contentType = response.headers.first(name: "content-type") ?? "application/json"
        return GatewayResponse(status: HTTPResponseStatus(statusCode: response.status), headers: ["content-type": contentType],
                               body: .whole(response.body))
    }
}
