
/// An Anthropic Messages request as an OpenAI chat completion request.
enum MessagesToChatRequest {
    static func translate(_ request: JSON, model: String) throws -> JSON {
        var chat: JSON = ["model": JSON(model)]
        var messages: [JSON] = []
        if let system = request["system"], !system.isNull {
            messages.append(["role": "system", "content": JSON(system.plainText)])
        }
        for (index, message) in request["messages"]?.elements.enumerated() ?? [].enumerated() {
            let role = message["role"]?.string ?? ""
            guard role == "user" || role == "assistant" else {
                throw GatewayError.invalidRequest("role must be \"user\" or \"assistant\"", param: "messages[\(index)].role")
            }
            let content = message["content"] ?? .null
            if let text = content.string {
                messages.append(["role": JSON(role), "content": JSON(text)])
                continue
            }
            var parts: [JSON] = []
            var toolCalls: [JSON] = []
            for block in content.elements {
                switch block["type"]?.string {
                case "text":
                    parts.append(["type": "text", "text": JSON(block["text"]?.string ?? "")])
                case "image":
                    parts.append(["type": "image_url", "image_url": ["url": JSON(imageURL(block["source"] ?? .object()))]])
                case "tool_use":
                    let arguments = String(decoding: (block["input"] ?? .object()).encoded(), as: UTF8.self)
                    toolCalls.append(["id": JSON(block["id"]?.string ?? ""), "type": "function",
                                      "function": ["name": JSON(block["name"]?.string ?? ""), "arguments": JSON(arguments)]])
                case "tool_result":
                    // OpenAI carries tool results as messages of their own, before the user's words.
                    var text = block["content"]?.plainText ?? ""
                    if block["is_error"]?.bool == true { text = "Error: " + text }
                    messages.append(["role": "tool", "tool_call_id": JSON(block["tool_use_id"]?.string ?? ""), "content": JSON(text)])
                default:
                    break  // thinking and other blocks have no OpenAI form
                }
            }
            if role == "assistant" {
                guard !parts.isEmpty || !toolCalls.isEmpty else { continue }
                var assistant: JSON = ["role": "assistant"]
                assistant["content"] = parts.isEmpty ? .null : JSON(parts.map { $0["text"]?.string ?? "" }.joined())
                if !toolCalls.isEmpty { assistant["tool_calls"] = JSON(array: toolCalls) }
                messages.append(assistant)
            } else if !parts.isEmpty {
                let onlyText = parts.allSatisfy { $0["type"]?.string == "text" }
                messages.append(["role": "user", "content": onlyText && parts.count == 1 ? parts[0]["text"]! : JSON(array: parts)])
            }
        }
        chat["messages"] = JSON(array: messages)
        chat.copy("max_tokens", from: request)
        chat.copy("temperature", from: request)
        chat.copy("top_p", from: request)
        chat.copy("stop_sequences", from: request, as: "stop")
        if request["stream"]?.bool == true {
            chat["stream"] = true
            chat["stream_options"] = ["include_usage": true]  // message_delta needs the usage
        }
        if let tools = request["tools"], tools.count > 0 {
            chat["tools"] = JSON(array: tools.elements.map { tool in
                var function: JSON = ["name": JSON(tool["name"]?.string ?? "")]
                function.copy("description", from: tool)
                function["parameters"] = tool["input_schema"] ?? ["type": "object", "properties": .object()]
                return ["type": "function", "function": function]
            })
        }
        if let choice = request["tool_choice"], choice.isObject {
            switch choice["type"]?.string {
            case "auto": chat["tool_choice"] = "auto"
            case "any": chat["tool_choice"] = "required"
            case "none": chat["tool_choice"] = "none"
            case "tool": chat["tool_choice"] = ["type": "function", "function": ["name": JSON(choice["name"]?.string ?? "")]]
            default: break
            }
            if choice["disable_parallel_tool_use"]?.bool == true { chat["parallel_tool_calls"] = false }
        }
        if let user = request["metadata"]?["user_id"]?.string { chat["user"] = JSON(user) }
        return chat
    }

    static func imageURL(_ source: JSON) -> String {
        if source["type"]?.string == "url" { return source["url"]?.string ?? "" }
        return "data:\(source["media_type"]?.string ?? "image/png");base64,\(source["data"]?.string ?? "")"
    }
}
