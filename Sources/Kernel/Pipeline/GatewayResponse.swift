import NIOCore
import NIOHTTP1

/// An answer on its way back through the pipeline.
public struct GatewayResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ResponseBody
    /// The provider (a key of `providers`) that answered; sent as `x-sluice-provider`.
    public var provider: String?

    public init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:], body: ResponseBody, provider: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.provider = provider
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

/// Input and output tokens of one answer, in one shape whatever the provider. The counts come
/// from providers, so every one is held within `0...Usage.maxTokens`: whatever an upstream
/// reports, sums, costs and counters computed from them cannot overflow or go negative.
public struct Usage: Sendable, Equatable {
    /// 2^40 tokens: far beyond any answer, and a sum of millions of them still fits an `Int`.
    public static let maxTokens = 1 << 40

    public var inputTokens: Int { didSet { inputTokens = Self.bounded(inputTokens) } }
    public var outputTokens: Int { didSet { outputTokens = Self.bounded(outputTokens) } }
    /// Input tokens served from the provider's prompt cache (never more than `inputTokens`).
    public var cachedInputTokens: Int { didSet { cachedInputTokens = Self.bounded(cachedInputTokens) } }

    public init(inputTokens: Int, outputTokens: Int, cachedInputTokens: Int = 0) {
        self.inputTokens = Self.bounded(inputTokens)
        self.outputTokens = Self.bounded(outputTokens)
        self.cachedInputTokens = Self.bounded(cachedInputTokens)
    }

    public var totalTokens: Int { inputTokens + outputTokens }

    /// `count` held within `0...maxTokens`.
    public static func bounded(_ count: Int) -> Int { min(max(count, 0), maxTokens) }
}

extension JSON {
    /// A token count as a provider reported it, held within `0...Usage.maxTokens`; `nil` when
    /// the value is not a number.
    public var tokenCount: Int? { JSONView(self).tokenCount }
}

extension JSONView {
    /// A token count as a provider reported it, held within `0...Usage.maxTokens`; `nil` when
    /// the value is not a number.
    public var tokenCount: Int? {
        if let int { return Usage.bounded(int) }
        guard let double, !double.isNaN else { return nil }
        return double <= 0 ? 0 : double >= Double(Usage.maxTokens) ? Usage.maxTokens : Int(double)
    }
}
