/// A model's reasoning between the dialects: Anthropic's thinking blocks, chat's de-facto
/// `reasoning_content` (DeepSeek, vLLM), and Responses' reasoning items. Anthropic signs its
/// thinking and takes it back in a later turn only with that signature, so the signature travels
/// too: as `reasoning_signature` beside `reasoning_content` in chat (the hub's own field), and as
/// the reasoning item's `encrypted_content` in Responses.
enum Reasoning {
    static let signatureKey = "reasoning_signature"
    /// Marks a Responses `encrypted_content` that holds an Anthropic signature, so that another
    /// provider's encrypted reasoning (OpenAI's) is never sent to Anthropic as a signature.
    static let encryptedPrefix = "anthropic-signature:"

    static func encryptedContent(signature: String?) -> JSON? {
        signature.map { JSON(encryptedPrefix + $0) }
    }

    static func signature(encryptedContent: String?) -> String? {
        guard let encryptedContent, encryptedContent.hasPrefix(encryptedPrefix) else { return nil }
        return String(encryptedContent.dropFirst(encryptedPrefix.count))
    }

    /// Anthropic's `thinking` for a chat `reasoning_effort`, when the answer's `max_tokens` leaves
    /// room for Anthropic's smallest budget (1,024 tokens) and some answer after it.
    static func anthropicThinking(effort: String?, maxTokens: Int?) -> JSON? {
        let budget: Int
        switch effort {
        case "minimal", "low": budget = 1024
        case "medium": budget = 4096
        case "high": budget = 16384
        default: return nil
        }
        // Unknown max_tokens: the provider adds its default later, which may be small; think little.
        let room = (maxTokens ?? 2048) - 256
        guard room >= 1024 else { return nil }
        return ["type": "enabled", "budget_tokens": JSON(min(budget, room))]
    }
}
