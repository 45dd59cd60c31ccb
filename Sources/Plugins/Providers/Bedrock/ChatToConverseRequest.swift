import Kernel

/// An OpenAI chat completion request as a Bedrock Converse request. What Converse cannot express
/// is refused with a 400 naming the parameter rather than silently dropped: `n` > 1, `logprobs`,
/// `response_format` other than text, audio, image URLs other than `data:` URLs.
enum ChatToConverseRequest {
    static func translate(_ chat: JSON) throws -> JSON {
        try refuseWhatConverseLacks(chat)
        var system: [JSON] = []
        var messages: [JSON] = []
        var usesTools = false

        for (index, message) in chat["messages"]?.elements.enumerated() ?? [].enumerated() {
            let path = "messages[\(index)]"
            switch message["role"]?.string {
            case "system", "developer":
                let text = Self.text(of: message["content"])
                if !text.isEmpty { system.append(["text": JSON(text)]) }
            case "user":
                append(role: "user", blocks: try contentBlocks(message["content"], at: "\(path).content"), to: &messages)
            case "assistant":
                var blocks: [JSON] = []
                let text = Self.text(of: message["content"])
                if !text.isEmpty { blocks.append(["text": JSON(text)]) }
                for (callIndex, call) in (message["tool_calls"]?.elements ?? []).enumerated() {
                    let arguments = call["function"]?["arguments"]?.string ?? "{}"
                    guard let input = try? JSON.parse(arguments.isEmpty ? "{}" : arguments), input.isObject else {
                        throw GatewayError.invalidRequest("tool call arguments must be a JSON object",
                                                          param: "\(path).tool_calls[\(callIndex)].function.arguments")
                    }
                    blocks.append(["toolUse": ["toolUseId": JSON(call["id"]?.string ?? ""),
                                               "name": JSON(call["function"]?["name"]?.string ?? ""), "input": input]])
                    usesTools = true
                }
                append(role: "assistant", blocks: blocks, to: &messages)
            case "tool":
                // Converse carries tool results in the user's turn; the next user message joins it.
                let result: JSON = ["toolResult": ["toolUseId": JSON(message["tool_call_id"]?.string ?? ""),
                                                   "content": [["text": JSON(Self.text(of: message["content"]))]]]]
                append(role: "user", blocks: [result], to: &messages)
                usesTools = true
            default:
                throw GatewayError.invalidRequest("unsupported message role", param: "\(path).role")
            }
        }

        var request: JSON = ["messages": JSON(array: messages)]
        if !system.isEmpty { request["system"] = JSON(array: system) }
        if let inference = inferenceConfig(chat) { request["inferenceConfig"] = inference }
        if let tools = try toolConfig(chat, historyUsesTools: usesTools) { request["toolConfig"] = tools }
        return request
    }

    private static func refuseWhatConverseLacks(_ chat: JSON) throws {
        if let n = chat["n"]?.int, n > 1 {
            throw GatewayError.invalidRequest("n > 1 is not supported by this model's provider (Amazon Bedrock)", param: "n")
        }
        if chat["logprobs"]?.bool == true {
            throw GatewayError.invalidRequest("logprobs are not available from this model's provider (Amazon Bedrock)", param: "logprobs")
        }
        if let format = chat["response_format"]?["type"]?.string, format != "text" {
            throw GatewayError.invalidRequest("response_format \"\(format)\" is not supported by this model's provider (Amazon Bedrock)",
                                              param: "response_format")
        }
        if let modalities = chat["modalities"]?.elements, modalities.contains(where: { $0.string != "text" }) {
            throw GatewayError.invalidRequest("only text output is supported by this model's provider (Amazon Bedrock)", param: "modalities")
        }
    }

    /// Converse wants alternating roles: consecutive messages of one role are merged.
    private static func append(role: String, blocks: [JSON], to messages: inout [JSON]) {
        guard !blocks.isEmpty else { return }
        if let last = messages.indices.last, messages[last]["role"]?.string == role, var content = messages[last]["content"] {
            for block in blocks { content.append(block) }
            messages[last]["content"] = content
        } else {
            messages.append(["role": JSON(role), "content": JSON(array: blocks)])
        }
    }

    /// The text of a content value: a string, or the text parts of an array.
    static func text(of content: JSON?) -> String {
        guard let content else { return "" }
        if let string = content.string { return string }
        return content.elements.compactMap { $0["type"]?.string == "text" ? $0["text"]?.string : nil }.joined(separator: "\n")
    }

    private static func contentBlocks(_ content: JSON?, at path: String) throws -> [JSON] {
        guard let content, !content.isNull else { return [] }
        if let text = content.string { return text.isEmpty ? [] : [["text": JSON(text)]] }
        var blocks: [JSON] = []
        for (index, part) in content.elements.enumerated() {
            switch part["type"]?.string {
            case "text":
                if let text = part["text"]?.string, !text.isEmpty { blocks.append(["text": JSON(text)]) }
            case "image_url":
                blocks.append(try image(part["image_url"]?["url"]?.string ?? "", at: "\(path)[\(index)].image_url.url"))
            default:
                throw GatewayError.invalidRequest("this content part type is not supported by the provider (Amazon Bedrock)",
                                                  param: "\(path)[\(index)].type")
            }
        }
        return blocks
    }

    /// A `data:image/…;base64,` URL as an image block; Converse takes no image URLs.
    private static func image(_ url: String, at param: String) throws -> JSON {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else {
            throw GatewayError.invalidRequest("Amazon Bedrock takes images as data: URLs (base64) only, not links", param: param)
        }
        let mediaType = url[url.index(url.startIndex, offsetBy: 5)..<comma].dropLast(";base64".count).lowercased()
        let format: String
        switch mediaType {
        case "image/png": format = "png"
        case "image/jpeg", "image/jpg": format = "jpeg"
        case "image/gif": format = "gif"
        case "image/webp": format = "webp"
        default: throw GatewayError.invalidRequest("image type \"\(mediaType)\" is not one of png, jpeg, gif, webp", param: param)
        }
        return ["image": ["format": JSON(format), "source": ["bytes": JSON(String(url[url.index(after: comma)...]))]]]
    }

    private static func inferenceConfig(_ chat: JSON) -> JSON? {
        var config = JSON.object()
        if let maxTokens = chat["max_completion_tokens"]?.int ?? chat["max_tokens"]?.int { config["maxTokens"] = JSON(maxTokens) }
        if let temperature = chat["temperature"]?.double { config["temperature"] = JSON(temperature) }
        if let topP = chat["top_p"]?.double { config["topP"] = JSON(topP) }
        if let stop = chat["stop"], !stop.isNull {
            let sequences = stop.string.map { [JSON($0)] } ?? stop.elements
            if !sequences.isEmpty { config["stopSequences"] = JSON(array: sequences) }
        }
        return config.count > 0 ? config : nil
    }

    /// Converse needs the tools declared whenever the conversation holds tool calls or results,
    /// so `tool_choice: "none"` drops the tools only when the history has none; otherwise they
    /// are declared without a choice (Converse has no "none").
    private static func toolConfig(_ chat: JSON, historyUsesTools: Bool) throws -> JSON? {
        guard let tools = chat["tools"], tools.count > 0 else { return nil }
        let choice = chat["tool_choice"]
        if choice?.string == "none", !historyUsesTools { return nil }
        var specs: [JSON] = []
        for (index, tool) in tools.elements.enumerated() {
            guard tool["type"]?.string == "function", let function = tool["function"], let name = function["name"]?.string else {
                throw GatewayError.invalidRequest("only function tools are supported by this model's provider (Amazon Bedrock)",
                                                  param: "tools[\(index)]")
            }
            var spec: JSON = ["name": JSON(name)]
            if let description = function["description"]?.string { spec["description"] = JSON(description) }
            let parameters = function["parameters"].flatMap { $0.isObject ? $0 : nil } ?? ["type": "object", "properties": .object()]
            spec["inputSchema"] = ["json": parameters]
            specs.append(["toolSpec": spec])
        }
        var config: JSON = ["tools": JSON(array: specs)]
        switch choice?.string {
        case "auto": config["toolChoice"] = ["auto": .object()]
        case "required": config["toolChoice"] = ["any": .object()]
        case "none", nil:
            if let name = choice?["function"]?["name"]?.string { config["toolChoice"] = ["tool": ["name": JSON(name)]] }
        default:
            throw GatewayError.invalidRequest("unknown tool_choice", param: "tool_choice")
        }
        return config
    }
}
