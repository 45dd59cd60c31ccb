import Foundation

/// The `chat.completion.chunk` events of one streamed chat answer, for the translators that write
/// a chat stream from another format (Anthropic's, Responses', a provider's own).
public struct ChatChunks: Sendable {
    public var id: String
    public var model: JSON
    public var created: Int

    public init(id: String = "chatcmpl-sluice", model: JSON = "", created: Int = Int(Date().timeIntervalSince1970)) {
        self.id = id
        self.model = model
        self.created = created
    }

    /// A chunk of choice `index`: its `delta`, and on the choice's last chunk its finish reason.
    public func chunk(_ delta: JSON, finishReason: String? = nil, index: Int = 0) -> SSEEvent {
        var json = envelope
        json["choices"] = [["index": JSON(index), "delta": delta, "logprobs": .null, "finish_reason": finishReason.map { JSON($0) } ?? .null]]
        return SSEEvent(data: json.description)
    }

    /// The usage-only chunk (no choices) that ends the stream of a client that asked for it
    /// (`stream_options.include_usage`).
    public func usage(_ usage: JSON) -> SSEEvent {
        var json = envelope
        json["choices"] = .array()
        json["usage"] = usage
        return SSEEvent(data: json.description)
    }

    private var envelope: JSON {
        ["id": JSON(id), "object": "chat.completion.chunk", "created": JSON(created), "model": model]
    }
}
