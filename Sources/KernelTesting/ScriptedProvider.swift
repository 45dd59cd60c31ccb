import Kernel
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A provider for tests: answers OpenAI chat requests with `reply` (whole or streamed word by
/// word), or fails with `fail_status`, and keeps every call it gets in its own `calls` log.
/// A `TestGateway` gathers the logs of its scripted providers (`TestGateway.calls`): each
/// gateway sees only its own calls, so tests that read them can run in parallel.
///
///     "providers": {"p": {"plugin": "scripted", "config": {"reply": "hi there"}}}
public struct ScriptedProvider: Provider {
    public static let name = "scripted"
    public static let summary = "a test provider answering from its config"

    public struct Settings: PluginSettings {
        @Setting("reply", "the answer's text") public var reply = "ok"
        @Setting("fail_status", .integer(min: 400, max: 599), "answer calls with this error status instead") public var failStatus: Int?
        @Setting("fail_times", .positiveInteger, "fail only the first this many calls, then answer (default: every call)")
        public var failTimes: Int?
        @Setting("retry_after", "the retry-after header of a failure") public var retryAfter: String?
        @Setting("input_tokens", .nonNegativeInteger, "the usage's input tokens (output tokens: the reply's words)") public var inputTokens = 1
        @Setting("stream_events", "a stream's events' data, sent as they are instead of the reply's words") public var streamEvents: [String]?
        @Setting("delay_ms", .number(min: 0), "wait this long before answering") public var delayMilliseconds = 0.0
        public init() {}
    }

    /// The calls this provider got, oldest first.
    public let calls = ProviderCallLog()

    let reply: String
    let failStatus: Int?
    let failTimes: Int?
    let retryAfter: String?
    let inputTokens: Int
    let streamEvents: [String]?
    let delay: Duration

    public init(settings: Settings, context: PluginContext) throws {
        reply = settings.reply
        failStatus = settings.failStatus
        failTimes = settings.failTimes
        retryAfter = settings.retryAfter
        inputTokens = settings.inputTokens
        streamEvents = settings.streamEvents
        delay = .milliseconds(settings.delayMilliseconds)
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse {
        let number = calls.record(call)
        if delay > .zero { try await Task.sleep(for: delay) }
        if let failStatus, number <= failTimes ?? .max {
            var error = GatewayError(HTTPResponseStatus(statusCode: failStatus), type: "upstream_error", "scripted failure \(failStatus)")
            if let retryAfter { error.headers.add(name: "retry-after", value: retryAfter) }
            throw error
        }
        let words = reply.split(separator: " ").map(String.init)
        call.request.context.usage = Usage(inputTokens: inputTokens, outputTokens: words.count)
        let id = JSON("chatcmpl-scripted"), model = JSON(call.upstreamModel)
        guard call.request.stream else {
            return .json(["id": id, "object": "chat.completion", "model": model,
                          "choices": [["index": 0, "message": ["role": "assistant", "content": JSON(reply)], "finish_reason": "stop"]],
                          "usage": ["prompt_tokens": JSON(inputTokens), "completion_tokens": JSON(words.count),
                                    "total_tokens": JSON(words.count + inputTokens)]])
        }
        let headers: HTTPHeaders = ["content-type": "text/event-stream"]
        if let streamEvents {
            return GatewayResponse(headers: headers, body: .events(EventStream(streamEvents.map { SSEEvent(data: $0) })))
        }
        var events = words.enumerated().map { index, word in
            SSEEvent(data: JSON(object: [("id", id), ("object", "chat.completion.chunk"), ("model", model), ("choices", [[
                "index": 0, "delta": ["content": JSON(index == 0 ? word : " " + word)], "finish_reason": .null]])]).description)
        }
        events.append(SSEEvent(data: JSON(object: [("id", id), ("object", "chat.completion.chunk"), ("model", model),
                                                   ("choices", [["index": 0, "delta": .object(), "finish_reason": "stop"]])]).description))
        events.append(.done)
        return GatewayResponse(headers: headers, body: .events(EventStream(events)))
    }
}

/// The calls one scripted provider received, each with when it came (so that a gateway's
/// providers' logs merge into one, in order).
public final class ProviderCallLog: Sendable {
    private let entries = NIOLockedValueBox<[(at: ContinuousClock.Instant, call: ProviderCall)]>([])

    public init() {}

    /// Adds a call; returns how many there are now (1 for the first).
    @discardableResult
    public func record(_ call: ProviderCall) -> Int {
        let now = ContinuousClock.now
        return entries.withLockedValue { entries in
            entries.append((now, call))
            return entries.count
        }
    }

    /// The calls, oldest first.
    public var all: [ProviderCall] { entries.withLockedValue { $0.map(\.call) } }

    var timed: [(at: ContinuousClock.Instant, call: ProviderCall)] { entries.withLockedValue { $0 } }
}
