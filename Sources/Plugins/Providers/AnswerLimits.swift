import Kernel

/// How much of a provider's answer the gateway will hold: a whole answer is buffered before it
/// is sent on, and a stream's event is assembled before it is parsed, so each is bounded; a
/// provider that sends more gets the client a 502 (or, mid-stream, an error event).
struct AnswerLimits: Sendable {
    var maxResponseBytes: Int
    var maxEventBytes: Int

    static let fields = [
        ConfigField("max_response_bytes", .positiveInteger, default: 67_108_864,
                    "largest whole answer accepted from the provider; a larger one is a 502"),
        ConfigField("max_event_bytes", .positiveInteger, default: 1_048_576,
                    "largest server-sent event accepted from the provider; a larger one ends the stream with an error event"),
    ]

    init(_ config: PluginConfig) {
        maxResponseBytes = config.int("max_response_bytes") ?? 67_108_864
        maxEventBytes = config.int("max_event_bytes") ?? 1_048_576
    }

    /// The stream of events in a streamed answer's body.
    func events(_ body: UpstreamBody) -> EventStream { EventStream(SSEEventSequence(body, maxEventBytes: maxEventBytes)) }
}
