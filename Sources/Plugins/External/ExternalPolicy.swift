import Kernel
import NIOCore
import NIOHTTP1

/// Asks an HTTP service of the admin's choosing about each request (and optionally each whole
/// answer) so that guardrails can be written in any language: the service gets the request as
/// JSON and answers `{"action": "allow"}`, `{"action": "deny", "message": …}` or
/// `{"action": "allow", "patch": {…}}` (a JSON merge patch, RFC 7396, applied to the body).
public struct ExternalPolicy: Middleware {
    public static let name = "external"
    public static let summary = "asks an HTTP service to allow, deny or patch each request (and answer)"

    public struct Settings: PluginSettings {
        @Setting("url", required: true, "the service's endpoint; it receives a POST with the request as JSON") public var url = ""
        @Setting("stages", .array(.choice(["request", "response"])),
                 "when to ask: before the provider (request) and/or after a whole answer (response; streams are not held back)")
        public var stages = ["request"]
        @Setting("timeout_s", .number(min: 0.001), "longest wait for the service") public var timeout = 2.0
        @Setting("on_error", .choice(["allow", "deny"]), "when the service fails or times out: let the request through, or refuse it (503)")
        public var onError = "deny"
        @Setting("headers", "headers sent to the service (values may be secret references)") public var headers = StringMap()
        public init() {}
    }

    let url: String
    let checksRequests: Bool
    let checksResponses: Bool
    let timeout: Duration
    let failOpen: Bool
    let headers: [(key: String, value: String)]
    let upstream: UpstreamClient

    public init(settings: Settings, context: PluginContext) throws {
        guard settings.url.hasPrefix("http://") || settings.url.hasPrefix("https://") else {
            throw context.configError("url", "expected an http:// or https:// URL")
        }
        url = settings.url
        checksRequests = settings.stages.contains("request")
        checksResponses = settings.stages.contains("response")
        timeout = .seconds(settings.timeout)
        failOpen = settings.onError == "allow"
        headers = settings.headers.pairs
        upstream = context.upstream
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard [.chatCompletions, .embeddings, .messages].contains(request.operation) else { return try await next(request) }
        // Each question waits in a function of its own: this frame lives as long as the request
        // waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let forwarded = checksRequests ? try await asked(request) : request
        let response = try await next(forwarded)
        guard checksResponses, case .whole = response.body, (200..<300).contains(response.status.code) else { return response }
        return try await asked(response, of: forwarded)
    }

    /// The request as the service lets it go on.
    @inline(never)
    private func asked(_ request: GatewayRequest) async throws -> GatewayRequest {
        guard let patch = try await ask(stage: "request", request, answer: nil) else { return request }
        var request = request
        request.body.json = MergePatch.apply(patch, to: request.body.json)
        return request
    }

    /// A whole answer as the service lets it go back.
    @inline(never)
    private func asked(_ response: GatewayResponse, of request: GatewayRequest) async throws -> GatewayResponse {
        guard case .whole(let body) = response.body, let answer = try? JSON.parse(body),
              let patch = try await ask(stage: "response", request, answer: answer) else { return response }
        var response = response
        response.body = .whole(MergePatch.apply(patch, to: answer).encoded(using: request.context.allocator))
        response.headers.remove(name: "content-length")
        return response
    }

    /// Asks the service; returns a patch to apply, nothing to let it pass, or throws a refusal.
    @inline(never)
    private func ask(stage: String, _ request: GatewayRequest, answer: JSON?) async throws -> JSON? {
        var question: JSON = [
            "stage": JSON(stage), "request_id": JSON(request.context.requestID), "operation": JSON(request.operation.rawValue),
            "front_door": JSON(request.dialect.rawValue), "model": JSON(request.model), "body": request.body.json,
        ]
        if let name = request.context.identity?.name { question["key_name"] = JSON(name) }
        if let answer { question["response"] = answer }
        var httpHeaders: HTTPHeaders = ["content-type": "application/json", "accept": "application/json",
                                        "x-request-id": request.context.requestID]
        for (name, value) in headers { httpHeaders.replaceOrAdd(name: name, value: value) }

        let verdict: JSON
        do {
            let reply = try await upstream.send(UpstreamRequest(
                url: url, headers: httpHeaders, body: question.encoded(using: request.context.allocator),
                timeouts: UpstreamTimeouts(connect: timeout, firstByte: timeout, total: timeout)))
            guard (200..<300).contains(reply.status), let parsed = try? JSON.parse(reply.body),
                  let action = parsed["action"]?.string, action == "allow" || action == "deny" else {
                throw UpstreamError.failed("the policy service answered \(reply.status) without a valid action")
            }
            verdict = parsed
        } catch {
            if error is CancellationError || Task.isCancelled { throw error }
            request.context.logger.warning("policy service failed", metadata: ["error": .string(String(describing: error)),
                                                                              "on_error": .string(failOpen ? "allow" : "deny")])
            if failOpen { return nil }
            throw GatewayError(.serviceUnavailable, type: "server_error", "the request could not be checked by the policy service; retry shortly",
                               code: "policy_unavailable")
        }
        if verdict["action"]?.string == "deny" {
            let status = verdict["status"]?.int.flatMap { (400..<500).contains($0) ? $0 : nil } ?? 403
            throw GatewayError(HTTPResponseStatus(statusCode: status), type: status == 403 ? "permission_error" : "invalid_request_error",
                               verdict["message"]?.string ?? "The request was refused by policy.", code: "policy_denied")
        }
        return verdict["patch"].flatMap { $0.isNull ? nil : $0 }
    }
}

/// JSON merge patch (RFC 7396): objects merge member by member, `null` removes, anything else replaces.
enum MergePatch {
    static func apply(_ patch: JSON, to target: JSON) -> JSON {
        guard patch.isObject else { return patch }
        var result = target.isObject ? target : JSON.object()
        for (key, value) in patch.members {
            if value.isNull {
                result[key] = nil
            } else {
                result[key] = apply(value, to: result[key] ?? .null)
            }
        }
        return result
    }
}
