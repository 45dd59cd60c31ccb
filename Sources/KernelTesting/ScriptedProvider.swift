import Kernel
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A provider for tests: answers OpenAI chat requests with `reply` (whole or streamed word by
/// word), or fails with `fail_status`, and records every call it gets in `ScriptedProvider.calls`.
///
///     "providers": {"p": {"plugin": "scripted", "config": {"reply": "hi there"}}}
public struct ScriptedProvider: Provider {
    public static let name = "scripted"
    public static let summary = "a test provider answering from its config"

    public struct Settings: PluginSettings {
        @Setting("reply", "the answer's text") public var reply = "ok"
        @Setting("fail_status", .integer(min: 400, max: 599), "answer every call with this error status instead") public var failStatus: Int?
        public init() {}
    }

    /// Every call any scripted provider received, oldest first.
    public static let calls = NIOLockedValueBox<[ProviderCall]>([])

    let reply: String
    let failStatus: Int?

    public init(settings: Settings, context: PluginContext) throws {
        reply = settings.reply
        failStatus = settings.failStatus
    }

    public func send(_ call: ProviderCall) async throws -> GatewayResponse {
        Self.calls.withLockedValue { $0.append(call) }
        if let failStatus {
            throw GatewayError(HTTPResponseStatus(statusCode: failStatus), type: "upstream_error", "scripted failure \(failStatus)")
        }
        let words = reply.split(separator: " ").map(String.init)
        call.request.context.usage = Usage(inputTokens: 1, outputTokens: words.count)
        let id = JSON("chatcmpl-scripted"), model = JSON(call.upstreamModel)
        guard call.request.stream else {
            return .json(["id": id, "object": "chat.completion", "model": model,
                          "choices": [["index": 0, "message": ["role": "assistant", "content": JSON(reply)], "finish_reason": "stop"]],
                          "usage": ["prompt_tokens": 1, "completion_tokens": JSON(words.count), "total_tokens": JSON(words.count + 1)]])
        }
        var events = words.enumerated().map { index, word in
            SSEEvent(data: JSON(object: [("id", id), ("object", "chat.completion.chunk"), ("model", model), ("choices", [[
                "index": 0, "delta": ["content": JSON(index == 0 ? word : " " + word)], "finish_reason": .null]])]).description)
        }
        events.append(SSEEvent(data: JSON(object: [("id", id), ("object", "chat.completion.chunk"), ("model", model),
                                                   ("choices", [["index": 0, "delta": .object(), "finish_reason": "stop"]])]).description))
        events.append(.done)
        return GatewayResponse(headers: ["content-type": "text/event-stream"], body: .events(EventStream(events)))
    }
}
