import NIOHTTP1

extension GatewayError {
    /// An `event: error` in an Anthropic stream, as the error the client should see in its own shape.
    public init(anthropicStreamError json: JSON) {
        let type = json["error"]?["type"]?.string ?? "api_error"
        let message = json["error"]?["message"]?.string ?? "the provider failed"
        let status: HTTPResponseStatus = switch type {
        case "overloaded_error": .serviceUnavailable
        case "rate_limit_error": .tooManyRequests
        default: .badGateway
        }
        self.init(status, type: "upstream_error", "the provider failed mid-stream: \(message)", code: type)
    }
}
