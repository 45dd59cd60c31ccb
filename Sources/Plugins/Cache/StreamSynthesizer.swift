import Kernel

/// A stream made from a whole answer, for a streaming client whose request was first answered
/// whole. Same content, in the shape each SDK expects.
enum StreamSynthesizer {
    static func events(for whole: JSON, dialect: APIDialect, includeUsage: Bool) -> [SSEEvent] {
        dialect == .anthropic ? anthropic(whole) : openAI(whole, includeUsage: includeUsage)
    }

    private static func openAI(_ completion: JSON, includeUsage: Bool) -> [SSEEvent] {
        let envelope: JSON = ["id": completion["id"] ?? "", "object": "chat.completion.chunk", "created": completion["created"] ?? 0,
                              "model": completion["model"] ?? ""]
        func chunk(_ delta: JSON, finish: JSON = .null) -> SSEEvent {
            var json = envelope
            json["choices"] = [["index": 0, "delta": delta, "logprobs": .null, "finish_reason": finish]]
            return SSEEvent(data: json.description)
        }
        let message = completion["choices"]?[0]?["message"] ?? .object()
        var events = [chunk(["role": "assistant", "content": ""])]
        if let text = message["content"]?.string, !text.isEmpty { events.append(chunk(["content": JSON(text)])) }
        for (index, call) in (message["tool_calls"]?.elements ?? []).enumerated() {
            var streamed = call
            streamed["index"] = JSON(index)
            events.append(chunk(["tool_calls": [streamed]]))
        }
        events.append(chunk(.object(), finish: completion["choices"]?[0]?["finish_reason"] ?? "stop"))
        if includeUsage, let usage = completion["usage"] {
            var last = envelope
            last["choices"] = .array()
            last["usage"] = usage
            events.append(SSEEvent(data: last.description))
        }
        return events + [.done]
    }

    private static func anthropic(_ message: JSON) -> [SSEEvent] {
        func event(_ name: String, _ json: JSON) -> SSEEvent { SSEEvent(event: name, data: json.description) }
        var start = message
        start["content"] = .array()
        start["stop_reason"] = .null
        var startUsage = message["usage"] ?? .object()
        startUsage["output_tokens"] = 0
        start["usage"] = startUsage
        var events = [event("message_start", ["type": "message_start", "message": start])]
        for (index, block) in (message["content"]?.elements ?? []).enumerated() {
            let position = JSON(index)
            switch block["type"]?.string {
            case "text":
                events.append(event("content_block_start", ["type": "content_block_start", "index": position, "content_block": ["type": "text", "text": ""]]))
                events.append(event("content_block_delta", ["type": "content_block_delta", "index": position,
                                                            "delta": ["type": "text_delta", "text": block["text"] ?? ""]]))
            case "tool_use":
                var empty = block
                empty["input"] = .object()
                events.append(event("content_block_start", ["type": "content_block_start", "index": position, "content_block": empty]))
                events.append(event("content_block_delta", ["type": "content_block_delta", "index": position,
                                                            "delta": ["type": "input_json_delta", "partial_json": JSON((block["input"] ?? .object()).description)]]))
            default:
                events.append(event("content_block_start", ["type": "content_block_start", "index": position, "content_block": block]))
            }
            events.append(event("content_block_stop", ["type": "content_block_stop", "index": position]))
        }
        events.append(event("message_delta", ["type": "message_delta",
                                              "delta": ["stop_reason": message["stop_reason"] ?? "end_turn", "stop_sequence": message["stop_sequence"] ?? .null],
                                              "usage": ["output_tokens": message["usage"]?["output_tokens"] ?? 0]]))
        events.append(event("message_stop", ["type": "message_stop"]))
        return events
    }
}
