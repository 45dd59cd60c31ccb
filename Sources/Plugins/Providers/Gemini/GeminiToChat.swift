import Foundation
import Kernel

/// A whole Gemini `GenerateContentResponse` as an OpenAI chat completion, one choice per
/// candidate.
///
/// A prompt Gemini blocks outright (`promptFeedback.blockReason`, no candidates) is answered as
/// a completion with empty content and `finish_reason: "content_filter"`, as OpenAI answers what
/// its own filter stops: clients already handle that, whole and streamed alike, where a 400 could
/// not be given once a stream has started.
enum GeminiToChat {
    static func completion(_ answer: JSON, model: String) -> JSON {
        var choices: [JSON] = []
        for (position, candidate) in (answer["candidates"]?.elements ?? []).enumerated() {
            let read = Candidate(candidate)
            var message: JSON = ["role": "assistant", "content": read.text.isEmpty && !read.calls.isEmpty ? .null : JSON(read.text),
                                 "refusal": .null]
            if !read.calls.isEmpty {
                message["tool_calls"] = JSON(array: read.calls.map { call in
                    ["id": JSON(call.id), "type": "function", "function": ["name": JSON(call.name), "arguments": JSON(call.arguments)]]
                })
            }
            let reason = finishReason(candidate["finishReason"]?.string, calledTools: !read.calls.isEmpty) ?? "stop"
            choices.append(["index": JSON(candidate["index"]?.int ?? position), "message": message, "logprobs": .null,
                            "finish_reason": JSON(reason)])
        }
        if choices.isEmpty {
            choices.append(["index": 0, "message": ["role": "assistant", "content": "", "refusal": .null], "logprobs": .null,
                            "finish_reason": JSON(isBlocked(answer) ? "content_filter" : "stop")])
        }
        var completion: JSON = [
            "id": JSON(completionID(answer["responseId"]?.string)), "object": "chat.completion",
            "created": JSON(Int(Date().timeIntervalSince1970)), "model": JSON(answer["modelVersion"]?.string ?? model),
            "choices": JSON(array: choices),
        ]
        completion["usage"] = usageJSON(answer["usageMetadata"])
        return completion
    }

    /// Whether Gemini refused the prompt itself.
    static func isBlocked(_ answer: JSON) -> Bool {
        answer["promptFeedback"]?["blockReason"]?.string != nil && (answer["candidates"]?.count ?? 0) == 0
    }

    /// OpenAI's `finish_reason` for a Gemini `finishReason`; `nil` while a candidate goes on.
    static func finishReason(_ reason: String?, calledTools: Bool) -> String? {
        guard let reason else { return nil }
        switch reason {
        case "MAX_TOKENS": return "length"
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT":
            return "content_filter"
        default: return calledTools ? "tool_calls" : "stop"  // STOP, MALFORMED_FUNCTION_CALL, OTHER, …
        }
    }

    /// The usage Gemini reports: its thinking counts as completion tokens (it is billed as output).
    static func usage(_ metadata: JSON?) -> (usage: Usage, reasoningTokens: Int)? {
        guard let metadata, metadata.isObject, let prompt = metadata["promptTokenCount"]?.tokenCount else { return nil }
        let thoughts = metadata["thoughtsTokenCount"]?.tokenCount ?? 0
        let usage = Usage(inputTokens: prompt, outputTokens: (metadata["candidatesTokenCount"]?.tokenCount ?? 0) + thoughts,
                          cachedInputTokens: min(prompt, metadata["cachedContentTokenCount"]?.tokenCount ?? 0))
        return (usage, thoughts)
    }

    /// OpenAI's `usage` object for Gemini's `usageMetadata` (zeros when it is missing, as clients
    /// expect the object).
    static func usageJSON(_ metadata: JSON?) -> JSON {
        let (usage, reasoning) = Self.usage(metadata) ?? (Usage(inputTokens: 0, outputTokens: 0), 0)
        var json = usage.openAIJSON
        if reasoning > 0 { json["completion_tokens_details"] = ["reasoning_tokens": JSON(reasoning)] }
        return json
    }

    static func completionID(_ responseID: String?) -> String {
        "chatcmpl-" + (responseID ?? String(UInt64.random(in: 0...UInt64.max), radix: 36))
    }

    /// A tool call id in OpenAI's style: Gemini's calls have none (or an id of its own, kept).
    static func callID(_ call: JSON) -> String {
        call["id"]?.string ?? "call_" + (0..<3).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 36) }.joined()
    }

    /// What one candidate said: its text (thought summaries left out) and its function calls.
    struct Candidate {
        var text = ""
        var calls: [(id: String, name: String, arguments: String)] = []

        init(_ candidate: JSON) {
            for part in candidate["content"]?["parts"]?.elements ?? [] {
                if let call = part["functionCall"] {
                    let arguments = String(decoding: (call["args"] ?? .object()).encoded(), as: UTF8.self)
                    calls.append((callID(call), call["name"]?.string ?? "", arguments))
                } else if let words = part["text"]?.string, part["thought"]?.bool != true {
                    text += words
                }
            }
        }
    }
}
