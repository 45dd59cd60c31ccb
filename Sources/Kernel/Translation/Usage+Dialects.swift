/// Token counts as each dialect reports them.
extension Usage {
    /// From an OpenAI `usage` object (`prompt_tokens` includes cached tokens).
    public init?(openAI usage: JSONView?) {
        guard let usage, usage.isObject, let input = usage["prompt_tokens"]?.tokenCount else { return nil }
        self.init(inputTokens: input, outputTokens: usage["completion_tokens"]?.tokenCount ?? 0,
                  cachedInputTokens: min(input, usage["prompt_tokens_details"]?["cached_tokens"]?.tokenCount ?? 0))
    }

    public init?(openAI usage: JSON?) { self.init(openAI: usage.map(JSONView.init)) }

    /// From an Anthropic `usage` object (`input_tokens` excludes cache reads and writes).
    public init?(anthropic usage: JSONView?) {
        guard let usage, usage.isObject else { return nil }
        // Each count is bounded (`tokenCount`), so their sum cannot overflow.
        let cacheRead = usage["cache_read_input_tokens"]?.tokenCount ?? 0
        let cacheWrite = usage["cache_creation_input_tokens"]?.tokenCount ?? 0
        self.init(inputTokens: (usage["input_tokens"]?.tokenCount ?? 0) + cacheRead + cacheWrite,
                  outputTokens: usage["output_tokens"]?.tokenCount ?? 0, cachedInputTokens: cacheRead)
    }

    public init?(anthropic usage: JSON?) { self.init(anthropic: usage.map(JSONView.init)) }

    /// From a Responses API `usage` object (`input_tokens` includes cached tokens).
    public init?(responses usage: JSONView?) {
        guard let usage, usage.isObject, let input = usage["input_tokens"]?.tokenCount else { return nil }
        self.init(inputTokens: input, outputTokens: usage["output_tokens"]?.tokenCount ?? 0,
                  cachedInputTokens: min(input, usage["input_tokens_details"]?["cached_tokens"]?.tokenCount ?? 0))
    }

    public init?(responses usage: JSON?) { self.init(responses: usage.map(JSONView.init)) }

    /// A Responses API `usage` object; `reasoningTokens` is the part of the output spent reasoning.
    public func responsesJSON(reasoningTokens: Int = 0) -> JSON {
        ["input_tokens": JSON(inputTokens), "input_tokens_details": ["cached_tokens": JSON(cachedInputTokens), "cache_write_tokens": 0],
         "output_tokens": JSON(outputTokens), "output_tokens_details": ["reasoning_tokens": JSON(min(reasoningTokens, outputTokens))],
         "total_tokens": JSON(totalTokens)]
    }

    public var openAIJSON: JSON {
        var json: JSON = ["prompt_tokens": JSON(inputTokens), "completion_tokens": JSON(outputTokens),
                          "total_tokens": JSON(totalTokens)]
        if cachedInputTokens > 0 { json["prompt_tokens_details"] = ["cached_tokens": JSON(cachedInputTokens)] }
        return json
    }

    public var anthropicJSON: JSON {
        var json: JSON = ["input_tokens": JSON(max(0, inputTokens - cachedInputTokens)), "output_tokens": JSON(outputTokens)]
        if cachedInputTokens > 0 { json["cache_read_input_tokens"] = JSON(cachedInputTokens) }
        return json
    }
}
