import Foundation
import Kernel

/// A Converse answer as an OpenAI chat completion, and the pieces both answers share.
enum ConverseToChat {
    static func completion(_ converse: JSON, id: String, model: String) -> JSON {
        var text = ""
        var toolCalls: [JSON] = []
        for block in converse["output"]?["message"]?["content"]?.elements ?? [] {
            if let piece = block["text"]?.string {
                text += piece
            } else if let use = block["toolUse"] {
                let arguments = String(decoding: (use["input"] ?? .object()).encoded(), as: UTF8.self)
                toolCalls.append(["id": JSON(use["toolUseId"]?.string ?? ""), "type": "function",
                                  "function": ["name": JSON(use["name"]?.string ?? ""), "arguments": JSON(arguments)]])
            }
            // reasoningContent and other blocks have no chat completion form.
        }
        var message: JSON = ["role": "assistant", "content": text.isEmpty && !toolCalls.isEmpty ? .null : JSON(text), "refusal": .null]
        if !toolCalls.isEmpty { message["tool_calls"] = JSON(array: toolCalls) }
        let choice: JSON = ["index": 0, "message": message, "logprobs": .null,
                            "finish_reason": JSON(finishReason(converse["stopReason"]?.string))]
        var completion: JSON = ["id": JSON(id), "object": "chat.completion", "created": JSON(Int(Date().timeIntervalSince1970)),
                                "model": JSON(model), "choices": [choice]]
        if let usage = usage(converse["usage"]) { completion["usage"] = usage.openAIJSON }
        return completion
    }

    /// Converse's `stopReason` as a `finish_reason`.
    static func finishReason(_ reason: String?) -> String {
        switch reason {
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "guardrail_intervened", "content_filtered": "content_filter"
        default: "stop"  // end_turn, stop_sequence
        }
    }

    /// Converse's usage: `inputTokens` leaves out the prompt cache's reads and writes.
    static func usage(_ usage: JSON?) -> Usage? {
        guard let usage, usage.isObject else { return nil }
        let cacheRead = usage["cacheReadInputTokens"]?.tokenCount ?? 0
        let cacheWrite = usage["cacheWriteInputTokens"]?.tokenCount ?? 0
        return Usage(inputTokens: (usage["inputTokens"]?.tokenCount ?? 0) + cacheRead + cacheWrite,
                     outputTokens: usage["outputTokens"]?.tokenCount ?? 0, cachedInputTokens: cacheRead)
    }

    /// A chat completion id from Bedrock's request id, when it sent one.
    static func completionID(requestID: String?) -> String {
        "chatcmpl-" + (requestID ?? UUID().uuidString.lowercased())
    }
}
