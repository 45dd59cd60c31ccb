import Kernel

extension SSEEvent {
    /// The usage an OpenAI stream chunk carries (with `stream_options.include_usage`), and
    /// whether the chunk is the usage-only one (no choices). Only that chunk names
    /// prompt_tokens, so a substring test spares parsing every other chunk.
    var openAIUsage: (usage: Usage, isUsageOnly: Bool)? {
        guard dataContains("prompt_tokens"), let json, let usage = Usage(openAI: json["usage"]) else { return nil }
        return (usage, json["choices"]?.count == 0)
    }
}
