import Kernel

/// The whole answer a finished stream adds up to, so that a streamed answer can also be
/// served to a client that asks for it whole.
enum StreamAssembler {
    static func whole(from events: [SSEEvent], dialect: APIDialect) -> JSON? {
        dialect == .anthropic ? anthropic(events) : openAI(events)
    }

    private static func openAI(_ events: [SSEEvent]) -> JSON? {
        var completion: JSON?
        var text = ""
        var calls: [Int: JSON] = [:]
        var finish: JSON = .null
        var usage: JSON?
        for event in events where !event.isDone {
            guard let chunk = event.json else { continue }
            if completion == nil {
                completion = ["id": chunk["id"] ?? "", "object": "chat.completion", "created": chunk["created"] ?? 0, "model": chunk["model"] ?? ""]
            }
            if let found = chunk["usage"], found.isObject { usage = found }
            guard let choice = chunk["choices"]?[0] else { continue }
            let delta = choice["delta"] ?? .object()
            text += delta["content"]?.string ?? ""
            for call in delta["tool_calls"]?.elements ?? [] {
                let index = call["index"]?.int ?? 0
                var merged = calls[index] ?? ["id": "", "type": "function", "function": ["name": "", "arguments": ""]]
                if let id = call["id"]?.string { merged["id"] = JSON(id) }
                var function = merged["function"] ?? .object()
                if let name = call["function"]?["name"]?.string, !name.isEmpty { function["name"] = JSON(name) }
                function["arguments"] = JSON((function["arguments"]?.string ?? "") + (call["function"]?["arguments"]?.string ?? ""))
                merged["function"] = function
                calls[index] = merged
            }
            if let reason = choice["finish_reason"], !reason.isNull { finish = reason }
        }
        guard var completion else { return nil }
        var message: JSON = ["role": "assistant", "content": text.isEmpty && !calls.isEmpty ? .null : JSON(text)]
        if !calls.isEmpty { message["tool_calls"] = JSON(array: calls.keys.sorted().compactMap { calls[$0] }) }
        completion["choices"] = [["index": 0, "message": message, "logprobs": .null, "finish_reason": finish]]
        if let usage { completion["usage"] = usage }
        return completion
    }

    private static func anthropic(_ events: [SSEEvent]) -> JSON? {
        var message: JSON?
        var blocks: [Int: JSON] = [:]
        var partialJSON: [Int: String] = [:]
        for event in events {
            guard let json = event.json else { continue }
            let index = json["index"]?.int ?? 0
            switch json["type"]?.string {
            case "message_start":
                message = json["message"]
            case "content_block_start":
                blocks[index] = json["content_block"] ?? .object()
            case "content_block_delta":
                let delta = json["delta"] ?? .object()
                if delta["type"]?.string == "text_delta" {
                    let text = (blocks[index]?["text"]?.string ?? "") + (delta["text"]?.string ?? "")
                    blocks[index]?["text"] = JSON(text)
                } else if delta["type"]?.string == "input_json_delta" {
                    partialJSON[index, default: ""] += delta["partial_json"]?.string ?? ""
                }
            case "message_delta":
                message?["stop_reason"] = json["delta"]?["stop_reason"] ?? .null
                message?["stop_sequence"] = json["delta"]?["stop_sequence"] ?? .null
                if var usage = message?["usage"], let output = json["usage"]?["output_tokens"] {
                    usage["output_tokens"] = output
                    message?["usage"] = usage
                }
            default:
                break
            }
        }
        guard var message else { return nil }
        for (index, text) in partialJSON { blocks[index]?["input"] = (try? JSON.parse(text)) ?? .object() }
        message["content"] = JSON(array: blocks.keys.sorted().compactMap { blocks[$0] })
        return message
    }
}
