
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
