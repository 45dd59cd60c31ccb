import Foundation
import NIOHTTP1

/// Whole answers between chat completions and Responses API `response` objects.
enum ResponseObject {
    // MARK: Chat completion → Response

    /// A chat completion as the Response the client of `asked` (a Responses request) expects.
    /// `base` names the Response and its items; without one it comes from the completion's id.
    static func response(fromCompletion completion: JSON, asked: JSON, base: String? = nil) -> JSON {
        let base = base ?? baseID(completion["id"]?.string, prefix: "chatcmpl-")
        let choice = completion["choices"]?[0] ?? .object()
        let message = choice["message"] ?? .object()
        let outcome = Outcome(finishReason: choice["finish_reason"]?.string)
        var output: [JSON] = []
        if let reasoning = reasoningText(message), !reasoning.isEmpty {
            output.append(reasoningItem(id: itemID("rs", base, output.count), text: reasoning,
                                        signature: message[Reasoning.signatureKey]?.string))
        }
        let calls = message["tool_calls"]?.elements ?? []
        let text = message["content"]?.plainText ?? ""
        let refusal = message["refusal"]?.string ?? ""
        if !text.isEmpty || !refusal.isEmpty || calls.isEmpty {
            var parts: [JSON] = []
            if !text.isEmpty || refusal.isEmpty { parts.append(outputText(text)) }
            if !refusal.isEmpty { parts.append(["type": "refusal", "refusal": JSON(refusal)]) }
            output.append(messageItem(id: itemID("msg", base, output.count), status: outcome.itemStatus, content: parts))
        }
        for call in calls {
            output.append(functionCallItem(id: itemID("fc", base, output.count), status: outcome.itemStatus, callID: call["id"]?.string ?? "",
                                           name: call["function"]?["name"]?.string ?? "",
                                           arguments: call["function"]?["arguments"]?.string ?? ""))
        }
        var response = envelope(asked: asked, id: "resp_" + base, model: completion["model"] ?? "",
                                createdAt: completion["created"]?.int, outcome: outcome, output: output)
        response.copy("service_tier", from: completion)
        response["usage"] = usage(fromOpenAI: completion["usage"])
        return response
    }

    /// How a Responses answer ended, from chat's finish reason.
    struct Outcome {
        var status: String
        var incompleteReason: String?

        static let inProgress = Outcome(status: "in_progress")

        init(status: String, incompleteReason: String? = nil) {
            self.status = status
            self.incompleteReason = incompleteReason
        }

        init(finishReason: String?) {
            switch finishReason {
            case "length": self.init(status: "incomplete", incompleteReason: "max_output_tokens")
            case "content_filter": self.init(status: "incomplete", incompleteReason: "content_filter")
            default: self.init(status: "completed")
            }
        }

        var itemStatus: String { status == "incomplete" ? "incomplete" : "completed" }
    }

    /// The Response's members other than its output and usage: what the request asked for, with
    /// the API's defaults where it asked nothing. Member order is the Responses API's own.
    static func envelope(asked: JSON, id: String, model: JSON, createdAt: Int?, outcome: Outcome, output: [JSON]) -> JSON {
        func echo(_ key: String, default value: JSON = .null) -> JSON {
            asked[key].flatMap { $0.isNull ? nil : $0 } ?? value
        }
        var text = echo("text", default: .object())
        if text["format"]?.isNull ?? true { text["format"] = ["type": "text"] }
        let reasoning: JSON = ["effort": asked["reasoning"]?["effort"] ?? .null, "summary": asked["reasoning"]?["summary"] ?? .null]
        var response: JSON = [
            "id": JSON(id), "object": "response", "created_at": JSON(createdAt ?? Int(Date().timeIntervalSince1970)),
            "status": JSON(outcome.status), "background": false, "error": .null,
            "incomplete_details": outcome.incompleteReason.map { ["reason": JSON($0)] } ?? .null,
            "instructions": echo("instructions"), "max_output_tokens": echo("max_output_tokens"), "max_tool_calls": .null,
            "model": model, "output": JSON(array: output), "parallel_tool_calls": echo("parallel_tool_calls", default: true),
            "previous_response_id": echo("previous_response_id"), "prompt_cache_key": echo("prompt_cache_key"),
            "reasoning": reasoning, "safety_identifier": echo("safety_identifier"), "service_tier": echo("service_tier", default: "default"),
            "store": echo("store", default: true), "temperature": echo("temperature", default: 1), "text": text,
            "tool_choice": echo("tool_choice", default: "auto"), "tools": echo("tools", default: .array()),
            "top_p": echo("top_p", default: 1), "truncation": echo("truncation", default: "disabled"), "usage": .null,
            "user": echo("user"), "metadata": echo("metadata", default: .object()),
        ]
        // OpenAI's document types these as strings, present only when asked for: never null.
        for key in ["prompt_cache_key", "safety_identifier", "user"] where response[key]?.isNull == true { response[key] = nil }
        return response
    }

    /// A Responses `usage` object from a chat `usage` (null when the provider sent none).
    static func usage(fromOpenAI usage: JSON?) -> JSON {
        guard let found = Usage(openAI: usage) else { return .null }
        return found.responsesJSON(reasoningTokens: usage?["completion_tokens_details"]?["reasoning_tokens"]?.tokenCount ?? 0)
    }

    /// The reasoning a chat server sent with its answer: `reasoning_content` (DeepSeek, vLLM) or `reasoning`.
    static func reasoningText(_ message: JSON) -> String? {
        message["reasoning_content"]?.string ?? message["reasoning"]?.string
    }

    static func reasoningItem(id: String, text: String, signature: String? = nil) -> JSON {
        var item: JSON = ["id": JSON(id), "type": "reasoning",
                          "summary": text.isEmpty ? .array() : [["type": "summary_text", "text": JSON(text)]]]
        if let encrypted = Reasoning.encryptedContent(signature: signature) { item["encrypted_content"] = encrypted }
        return item
    }

    static func messageItem(id: String, status: String, content: [JSON]) -> JSON {
        ["id": JSON(id), "type": "message", "status": JSON(status), "content": JSON(array: content), "role": "assistant"]
    }

    static func outputText(_ text: String) -> JSON {
        ["type": "output_text", "annotations": .array(), "logprobs": .array(), "text": JSON(text)]
    }

    static func functionCallItem(id: String, status: String, callID: String, name: String, arguments: String) -> JSON {
        ["id": JSON(id), "type": "function_call", "status": JSON(status), "arguments": JSON(arguments),
         "call_id": JSON(callID), "name": JSON(name)]
    }

    /// Output item ids: the kind's prefix, the answer's id and the item's place in the output.
    static func itemID(_ prefix: String, _ base: String, _ index: Int) -> String {
        "\(prefix)_\(base)_\(index)"
    }

    /// A Response id of the gateway's own making: a translated answer cannot reuse the completion's
    /// id, which some servers repeat (a fixed id, or a counter restarted by each replica), and
    /// stored responses are found by id.
    static func uniqueBase() -> String {
        UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    /// An id without its dialect's prefix, to be given the other dialect's.
    static func baseID(_ id: String?, prefix: String) -> String {
        guard let id, !id.isEmpty else { return "sluice" }
        return id.hasPrefix(prefix) ? String(id.dropFirst(prefix.count)) : id
    }

    // MARK: Response → chat completion

    /// A Response as a chat completion. A failed Response is the provider's failure.
    static func completion(fromResponse response: JSON) throws -> JSON {
        if response["status"]?.string == "failed" { throw failure(response["error"]) }
        var text: String?
        var refusal: String?
        var reasoning: [String] = []
        var toolCalls: [JSON] = []
        for item in response["output"]?.elements ?? [] {
            switch item["type"]?.string {
            case "message":
                for part in item["content"]?.elements ?? [] {
                    switch part["type"]?.string {
                    case "output_text": text = (text ?? "") + (part["text"]?.string ?? "")
                    case "refusal": refusal = (refusal ?? "") + (part["refusal"]?.string ?? "")
                    default: break
                    }
                }
            case "reasoning":
                reasoning += reasoningTexts(item)
            case "function_call":
                toolCalls.append(["id": item["call_id"] ?? "", "type": "function",
                                  "function": ["name": item["name"] ?? "", "arguments": item["arguments"] ?? ""]])
            default:
                break  // hosted tools' items have no chat form
            }
        }
        var message: JSON = ["role": "assistant", "content": text.map { JSON($0) } ?? (toolCalls.isEmpty && refusal == nil ? "" : .null),
                             "refusal": refusal.map { JSON($0) } ?? .null]
        if !reasoning.isEmpty { message["reasoning_content"] = JSON(reasoning.joined(separator: "\n")) }
        if !toolCalls.isEmpty { message["tool_calls"] = JSON(array: toolCalls) }
        let finishReason = finishReason(response, hasToolCalls: !toolCalls.isEmpty)
        var completion: JSON = [
            "id": JSON(completionID(fromResponseID: response["id"]?.string)), "object": "chat.completion",
            "created": JSON(response["created_at"]?.int ?? Int(Date().timeIntervalSince1970)), "model": response["model"] ?? "",
            "choices": [["index": 0, "message": message, "logprobs": .null, "finish_reason": JSON(finishReason)]],
        ]
        if let usage = chatUsage(fromResponses: response["usage"]) { completion["usage"] = usage }
        completion.copy("service_tier", from: response)
        return completion
    }

    static func completionID(fromResponseID id: String?) -> String {
        "chatcmpl-" + baseID(id, prefix: "resp_")
    }

    /// The texts of a reasoning item: its summary, else its raw reasoning (open models send that).
    static func reasoningTexts(_ item: JSON) -> [String] {
        let summary = (item["summary"]?.elements ?? []).compactMap { $0["text"]?.string }
        return summary.isEmpty ? (item["content"]?.elements ?? []).compactMap { $0["text"]?.string } : summary
    }

    static func finishReason(_ response: JSON, hasToolCalls: Bool) -> String {
        switch response["incomplete_details"]?["reason"]?.string {
        case "max_output_tokens": return "length"
        case "content_filter": return "content_filter"
        default: return hasToolCalls ? "tool_calls" : "stop"
        }
    }

    /// A chat `usage` object from a Responses `usage`.
    static func chatUsage(fromResponses json: JSON?) -> JSON? {
        guard let usage = Usage(responses: json) else { return nil }
        var chat = usage.openAIJSON
        chat["prompt_tokens_details"] = ["cached_tokens": JSON(usage.cachedInputTokens)]
        chat["completion_tokens_details"] = ["reasoning_tokens": JSON(json?["output_tokens_details"]?["reasoning_tokens"]?.tokenCount ?? 0)]
        return chat
    }

    /// A Response's `error` (from a failed Response or an `error` event) as the client's error.
    static func failure(_ error: JSON?) -> GatewayError {
        let message = error?["message"]?.string ?? "the provider failed"
        let code = error?["code"]?.string
        if code == "rate_limit_exceeded" {
            return GatewayError(.tooManyRequests, type: "rate_limit_error", "the provider is rate limiting requests: \(message)", code: code)
        }
        return GatewayError(.badGateway, type: "upstream_error", "the provider failed: \(message)", code: code ?? "upstream_failed")
    }
}
