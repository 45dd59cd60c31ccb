
/// An OpenAI chat completion request as an Anthropic Messages request.
enum ChatToMessagesRequest {
    /// `max_tokens` is left out when the client set none: the provider adds its own default, as
    /// Anthropic requires one.
    static func translate(_ chat: JSON, model: String) throws -> JSON {
        if let n = chat["n"]?.int, n > 1 {
            throw GatewayError.invalidRequest("n > 1 is not supported by this model's provider (Anthropic)", param: "n")
        }
        var request: JSON = ["model": JSON(model)]
        var system: [String] = []
        var messages: [JSON] = []

        for (index, message) in chat["messages"]?.elements.enumerated() ?? [].enumerated() {
            switch message["role"]?.string {
            case "system", "developer":
                system.append(message["content"]?.plainText ?? "")
            case "user":
                append(role: "user", blocks: try contentBlocks(message["content"], at: "messages[\(index)].content"), to: &messages)
            case "assistant":
                var blocks: [JSON] = []
                // Anthropic takes earlier thinking back only as it issued it: with its signature.
                if let thinking = message["reasoning_content"]?.string, let signature = message[Reasoning.signatureKey]?.string {
                    blocks.append(["type": "thinking", "thinking": JSON(thinking), "signature": JSON(signature)])
                }
                if let content = message["content"], !content.isNull {
                    let text = content.plainText
                    if !text.isEmpty { blocks.append(["type": "text", "text": JSON(text)]) }
                }
                for call in message["tool_calls"]?.elements ?? [] {
                    let arguments = call["function"]?["arguments"]?.string ?? "{}"
                    let input = (try? JSON.parse(arguments)).flatMap { $0.isObject ? $0 : nil } ?? JSON.object()
                    blocks.append(["type": "tool_use", "id": JSON(call["id"]?.string ?? ""),
                                   "name": JSON(call["function"]?["name"]?.string ?? ""), "input": input])
                }
                append(role: "assistant", blocks: blocks, to: &messages)
            case "tool":
                let result: JSON = ["type": "tool_result", "tool_use_id": JSON(message["tool_call_id"]?.string ?? ""),
                                    "content": JSON(message["content"]?.plainText ?? "")]
                append(role: "user", blocks: [result], to: &messages)
            default:
                throw GatewayError.invalidRequest("unsupported message role", param: "messages[\(index)].role")
            }
        }
        if !system.isEmpty { request["system"] = JSON(system.joined(separator: "\n\n")) }
        request["messages"] = JSON(array: messages)
        if let maxTokens = chat["max_completion_tokens"]?.int ?? chat["max_tokens"]?.int { request["max_tokens"] = JSON(maxTokens) }
        if let temperature = chat["temperature"]?.double { request["temperature"] = JSON(min(temperature, 1)) }
        request.copy("top_p", from: chat)
        if let stop = chat["stop"] {
            let sequences = stop.string.map { [JSON($0)] } ?? stop.elements
            if !sequences.isEmpty { request["stop_sequences"] = JSON(array: sequences) }
        }
        if chat["stream"]?.bool == true { request["stream"] = true }
        if let tools = chat["tools"], tools.count > 0 {
            request["tools"] = JSON(array: tools.elements.map { tool in
                let function = tool["function"] ?? .object()
                var converted: JSON = ["name": JSON(function["name"]?.string ?? "")]
                converted.copy("description", from: function)
                converted["input_schema"] = function["parameters"] ?? ["type": "object", "properties": .object()]
                return converted
            })
        }
        if var choice = toolChoice(chat["tool_choice"]) {
            if chat["parallel_tool_calls"]?.bool == false { choice["disable_parallel_tool_use"] = true }
            request["tool_choice"] = choice
        }
        if let user = chat["user"]?.string { request["metadata"] = ["user_id": JSON(user)] }
        if let thinking = Reasoning.anthropicThinking(effort: chat["reasoning_effort"]?.string, maxTokens: request["max_tokens"]?.int) {
            request["thinking"] = thinking
            request["temperature"] = nil  // extended thinking takes no temperature
            request["top_p"] = nil
        }
        return request
    }

    /// Anthropic wants alternating roles: consecutive messages of one role are merged.
    private static func append(role: String, blocks: [JSON], to messages: inout [JSON]) {
        guard !blocks.isEmpty else { return }
        if let last = messages.indices.last, messages[last]["role"]?.string == role, var content = messages[last]["content"] {
            for block in blocks { content.append(block) }
            messages[last]["content"] = content
        } else {
            messages.append(["role": JSON(role), "content": JSON(array: blocks)])
        }
    }

    private static func contentBlocks(_ content: JSON?, at path: String) throws -> [JSON] {
        guard let content else { return [] }
        if let text = content.string { return [["type": "text", "text": JSON(text)]] }
        return try content.elements.enumerated().compactMap { index, part in
            switch part["type"]?.string {
            case "text":
                return ["type": "text", "text": JSON(part["text"]?.string ?? "")]
            case "image_url":
                let url = part["image_url"]?["url"]?.string ?? ""
                return ["type": "image", "source": imageSource(url)]
            default:
                throw GatewayError.invalidRequest("this content part type is not supported by the provider", param: "\(path)[\(index)].type")
            }
        }
    }

    /// `data:image/png;base64,…` becomes a base64 source, anything else a URL source.
    static func imageSource(_ url: String) -> JSON {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else {
            return ["type": "url", "url": JSON(url)]
        }
        let mediaType = url[url.index(url.startIndex, offsetBy: 5)..<comma].dropLast(";base64".count)
        return ["type": "base64", "media_type": JSON(String(mediaType)), "data": JSON(String(url[url.index(after: comma)...]))]
    }

    private static func toolChoice(_ choice: JSON?) -> JSON? {
        guard let choice, !choice.isNull else { return nil }
        switch choice.string {
        case "auto": return ["type": "auto"]
        case "required": return ["type": "any"]
        case "none": return ["type": "none"]
        default:
            guard let name = choice["function"]?["name"]?.string else { return nil }
            return ["type": "tool", "name": JSON(name)]
        }
    }
}
