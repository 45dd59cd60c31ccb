import Kernel
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Access tokens for a service account: one is fetched when first needed and shared by every
/// request until shortly before it expires. While one exchange is under way, other requests
/// wait for it instead of starting their own (a burst of requests after expiry costs one
/// exchange). If a refresh fails while the old token is still valid, the old one serves on.
final class ServiceAccountTokens: Sendable {
    typealias Token = (value: String, refreshAt: ContinuousClock.Instant, expiresAt: ContinuousClock.Instant)

    let account: ServiceAccount
    let upstream: UpstreamClient
    let logger: Logger
    private let state = NIOLockedValueBox<(token: Token?, pending: Task<Token, any Error>?)>((nil, nil))

    init(account: ServiceAccount, upstream: UpstreamClient, logger: Logger) {
        self.account = account
        self.upstream = upstream
        self.logger = logger
    }

    func token() async throws -> String {
        enum Next { case use(String), wait(Task<Token, any Error>, fallback: Token?) }
        let next: Next = state.withLockedValue { state in
            let now = ContinuousClock.now
            if let token = state.token, now < token.refreshAt { return .use(token.value) }
            let fallback = state.token.flatMap { now < $0.expiresAt ? $0 : nil }
            if let pending = state.pending { return .wait(pending, fallback: fallback) }
            let task = Task { try await self.exchange() }
            state.pending = task
            return .wait(task, fallback: fallback)
        }
        switch next {
        case .use(let token):
            return token
        case .wait(let task, let fallback):
            let result = await task.result
            state.withLockedValue { state in
                guard state.pending == task else { return }
                state.pending = nil
                if case .success(let token) = result { state.token = token }
            }
            switch result {
            case .success(let token): return token.value
            case .failure(let error):
                guard let fallback else { throw error }
                logger.warning("refreshing the Vertex AI access token failed; the current one serves until it expires",
                               metadata: ["error": .string((error as? GatewayError)?.message ?? "\(error)")])
                return fallback.value
            }
        }
    }

    /// Trades a fresh assertion for a token at the key file's `token_uri`.
    private func exchange() async throws -> Token {
        let assertion: String
        do { assertion = try account.assertion() } catch { throw Self.failure("signing the service account assertion failed") }
        // A JWT is base64url and dots: nothing in it needs escaping in a form body.
        let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + assertion
        let response: UpstreamResponse
        do {
            response = try await upstream.send(UpstreamRequest(
                url: account.tokenURI, headers: ["content-type": "application/x-www-form-urlencoded", "accept": "application/json"],
                body: ByteBuffer(string: form),
                timeouts: UpstreamTimeouts(connect: .seconds(5), firstByte: .seconds(15), total: .seconds(15)), maxResponseBytes: 1 << 20))
        } catch {
            throw Self.failure("the token endpoint could not be reached (\(GatewayError(error).message))")
        }
        let json = try? JSON.parse(response.body)
        guard (200..<300).contains(response.status), let token = json?["access_token"]?.string, !token.isEmpty else {
            // Google's OAuth errors ({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}) say why.
            let reason = [json?["error"]?.string, json?["error_description"]?.string].compactMap { $0 }.joined(separator: ": ")
            throw Self.failure("the token endpoint answered HTTP \(response.status)" + (reason.isEmpty ? "" : " (\(reason))"))
        }
        let lifetime = max(json?["expires_in"]?.int ?? 3600, 1)
        let now = ContinuousClock.now
        // Refreshed five minutes before it expires, or halfway through a short-lived one.
        let margin = min(300, lifetime / 2)
        return (token, now + .seconds(lifetime - margin), now + .seconds(lifetime))
    }

    static func failure(_ reason: String) -> GatewayError {
        GatewayError(.badGateway, type: "upstream_error", "could not obtain a Vertex AI access token: \(reason)", code: "provider_credentials")
    }
}
