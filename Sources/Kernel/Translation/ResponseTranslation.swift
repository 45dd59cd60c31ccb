import Foundation

/// Whole answers between the two dialects.
enum ResponseTranslation {
    /// An Anthropic message as an OpenAI chat completion.
    static func completion(fromMessage message: JSON) -> JSON {
        var text = "", thinking = "", signature = ""
        var toolCalls: [JSON] = []
        for block in message["content"]?.elements ?? [] {
            switch block["type"]?.string {
            case "text": text += block["text"]?.string ?? ""
            case "thinking":
                thinking += block["thinking"]?.string ?? ""
                signature = block["signature"]?.string ?? signature
            case "tool_use":
                let arguments = String(decoding: (block["input"] ?? .object()).encoded(), as: UTF8.self)
                toolCalls.append(["id": JSON(block["id"]?.string ?? ""), "type": "function",
                                  "function": ["name": JSON(block["name"]?.string ?? ""), "arguments": JSON(arguments)]])
            default: break
            }
        }
        var assistant: JSON = ["role": "assistant", "content": text.isEmpty && !toolCalls.isEmpty ? .null : JSON(text), "refusal": .null]
        if !toolCalls.isEmpty { assistant["tool_calls"] = JSON(array: toolCalls) }
        if !thinking.isEmpty { assistant["reasoning_content"] = JSON(thinking) }
        if !signature.isEmpty { assistant[Reasoning.signatureKey] = JSON(signature) }
        let choice: JSON = ["index": 0, "message": assistant, "logprobs": .null,
                            "finish_reason": StopReason.openAI(fromAnthropic: message["stop_reason"]?.string).map { JSON($0) } ?? .null]
        var completion: JSON = [
            "id": JSON(completionID(fromMessageID: message["id"]?.string)), "object": "chat.completion",
            "created": JSON(Int(Date().timeIntervalSince1970)), "model": message["model"] ?? "",
            "choices": [choice],
        ]
        if let usage = Usage(anthropic: message["usage"]) { completion["usage"] = usage.openAIJSON }
        return completion
    }

    /// An OpenAI chat completion as an Anthropic message.
    static func message(fromCompletion completion: JSON) -> JSON {
        let choice = completion["choices"]?[0] ?? .object()
        let assistant = choice["message"] ?? .object()
        var content: [JSON] = []
        if let text = assistant["content"]?.plainText, !text.isEmpty { content.append(["type": "text", "text": JSON(text)]) }
        for call in assistant["tool_calls"]?.elements ?? [] {
            let input = (try? JSON.parse(call["function"]?["arguments"]?.string ?? "{}")).flatMap { $0.isObject ? $0 : nil } ?? .object()
            content.append(["type": "tool_use", "id": JSON(call["id"]?.string ?? ""),
                            "name": JSON(call["function"]?["name"]?.string ?? ""), "input": input])
        }
        return [
            "id": JSON(messageID(fromCompletionID: completion["id"]?.string)), "type": "message", "role": "assistant",
            "model": completion["model"] ?? "", "content": JSON(array: content),
            "stop_reason": StopReason.anthropic(fromOpenAI: choice["finish_reason"]?.string).map { JSON($0) } ?? .null,
            "stop_sequence": .null,
            "usage": (Usage(openAI: completion["usage"]) ?? Usage(inputTokens: 0, outputTokens: 0)).anthropicJSON,
        ]
    }

    static func completionID(fromMessageID id: String?) -> String {
        guard let id else { return "chatcmpl-sluice" }
        return "chatcmpl-" + (id.hasPrefix("msg_") ? String(id.dropFirst(4)) : id)
    }

    static func messageID(fromCompletionID id: String?) -> String {
        guard let id else { return "msg_sluice" }
        return "msg_" + (id.hasPrefix("chatcmpl-") ? String(id.dropFirst(9)) : id)
    }
}
