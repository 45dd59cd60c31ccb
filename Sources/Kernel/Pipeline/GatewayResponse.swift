import NIOCore
import NIOHTTP1

/// An answer on its way back through the pipeline.
public struct GatewayResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ResponseBody
    /// The provider (a key of `providers`) that answered; sent as `x-sluice-provider`.
    public var provider: String?
    /// Token usage of a whole answer, when the provider reported it.
    public var usage: Usage?

    public init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:], body: ResponseBody,
                provider: String? = nil, usage: Usage? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.provider = provider
        self.usage = usage
    }

    /// A whole JSON answer.
    public static func json(_ json: JSON, status: HTTPResponseStatus = .ok, allocator: ByteBufferAllocator = .init()) -> GatewayResponse {
        GatewayResponse(status: status, headers: ["content-type": "application/json"], body: .whole(json.encoded(using: allocator)))
    }
}

/// Either the whole body or a stream of server-sent events that plugins can observe or rewrite
/// one event at a time, without buffering the stream.
public enum ResponseBody: Sendable {
    case whole(ByteBuffer)
    case events(EventStream)
}

/// Input and output tokens of one answer, in one shape whatever the provider.
public struct Usage: Sendable, Equatable {
    public var inputTokens: Int
    public var outputTokens: Int
    /// Input tokens served from the provider's prompt cache.
    public var cachedInputTokens: Int

    public init(inputTokens: Int, outputTokens: Int, cachedInputTokens: Int = 0) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
    }
}
