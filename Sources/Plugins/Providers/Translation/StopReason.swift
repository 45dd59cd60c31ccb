import Kernel

/// Why an answer ended, between OpenAI's `finish_reason` and Anthropic's `stop_reason`.
enum StopReason {
    static func openAI(fromAnthropic reason: String?) -> String? {
        switch reason {
        case nil: nil
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        default: "stop"  // end_turn, stop_sequence, pause_turn
        }
    }

    static func anthropic(fromOpenAI reason: String?) -> String? {
        switch reason {
        case nil: nil
        case "length": "max_tokens"
        case "tool_calls", "function_call": "tool_use"
        case "content_filter": "refusal"
        default: "end_turn"
        }
    }
}

extension Usage {
    /// From an OpenAI `usage` object (`prompt_tokens` includes cached tokens).
    init?(openAI usage: JSON?) {
        guard let usage, usage.isObject, let input = usage["prompt_tokens"]?.tokenCount else { return nil }
        self.init(inputTokens: input, outputTokens: usage["completion_tokens"]?.tokenCount ?? 0,
                  cachedInputTokens: min(input, usage["prompt_tokens_details"]?["cached_tokens"]?.tokenCount ?? 0))
    }

    /// From an Anthropic `usage` object (`input_tokens` excludes cache reads and writes).
    init?(anthropic usage: JSON?) {
        guard let usage, usage.isObject else { return nil }
        // Each count is bounded (`tokenCount`), so their sum cannot overflow.
        let cacheRead = usage["cache_read_input_tokens"]?.tokenCount ?? 0
        let cacheWrite = usage["cache_creation_input_tokens"]?.tokenCount ?? 0
        self.init(inputTokens: (usage["input_tokens"]?.tokenCount ?? 0) + cacheRead + cacheWrite,
                  outputTokens: usage["output_tokens"]?.tokenCount ?? 0, cachedInputTokens: cacheRead)
    }

    var openAIJSON: JSON {
        var json: JSON = ["prompt_tokens": JSON(inputTokens), "completion_tokens": JSON(outputTokens),
                          "total_tokens": JSON(totalTokens)]
        if cachedInputTokens > 0 { json["prompt_tokens_details"] = ["cached_tokens": JSON(cachedInputTokens)] }
        return json
    }

    var anthropicJSON: JSON {
        var json: JSON = ["input_tokens": JSON(max(0, inputTokens - cachedInputTokens)), "output_tokens": JSON(outputTokens)]
        if cachedInputTokens > 0 { json["cache_read_input_tokens"] = JSON(cachedInputTokens) }
        return json
    }
}
