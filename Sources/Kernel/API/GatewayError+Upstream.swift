extension GatewayError {
    /// Any error as the answer a client should see. Upstream failures become 502/503/504;
    /// anything unexpected becomes a 500 without internal details.
    public init(_ error: any Error, provider: String? = nil) {
        switch error {
        case let error as GatewayError:
            self = error
        case let error as UpstreamError:
            switch error {
            case .timedOut(let phase):
                self = GatewayError(.gatewayTimeout, type: "timeout_error", "the provider did not answer in time (\(phase.rawValue) timeout)",
                                    code: "upstream_timeout")
            case .connectFailed:
                // Nothing answered: the provider is down (a dead local model server, say), not misbehaving.
                self = GatewayError(.serviceUnavailable, type: "upstream_error", "could not connect to the provider",
                                    code: "provider_unavailable")
            case .shutdown:
                self = GatewayError(.serviceUnavailable, type: "server_error", "the gateway is shutting down", code: "shutting_down")
            case .cancelled:
                self = GatewayError(.init(statusCode: 499, reasonPhrase: "Client Closed Request"), type: "cancelled", "the request was cancelled")
            case .failed:
                self = GatewayError(.badGateway, type: "upstream_error", "the provider connection failed", code: "upstream_failed")
            case .responseTooLarge(let limit):
                self = GatewayError(.badGateway, type: "upstream_error", "the provider's answer is larger than this gateway accepts (\(limit) bytes)",
                                    code: "upstream_response_too_large")
            case .eventTooLarge(let limit):
                self = GatewayError(.badGateway, type: "upstream_error", "the provider sent an event larger than this gateway accepts (\(limit) bytes)",
                                    code: "upstream_event_too_large")
            }
        case is CancellationError:
            self = GatewayError(.init(statusCode: 499, reasonPhrase: "Client Closed Request"), type: "cancelled", "the request was cancelled")
        default:
            self = .internalError()
        }
        if self.provider == nil { self.provider = provider }
    }
}
