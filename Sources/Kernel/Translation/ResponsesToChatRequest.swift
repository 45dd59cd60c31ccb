/// An OpenAI Responses request as an OpenAI chat completion request.
enum ResponsesToChatRequest {
    static func translate(_ request: JSON, model: String) throws -> JSON {
        for (key, value) in request.members where !value.isNull {
            try checkField(key, value)
        }
        var chat: JSON = ["model": JSON(model)]
        var messages: [JSON] = []
        if let instructions = request["instructions"], !instructions.isNull {
            guard let text = instructions.string else {
                throw GatewayError.invalidRequest("instructions must be a string", param: "instructions")
            }
            messages.append(["role": "system", "content": JSON(text)])
        }
        if let input = request["input"], !input.isNull {
            if let text = input.string {
                messages.append(["role": "user", "content": JSON(text)])
            } else {
                var conversation = Conversation()
                for (index, item) in input.elements.enumerated() { try conversation.add(item, at: "input[\(index)]") }
                messages += conversation.messages
            }
        }
        chat["messages"] = JSON(array: messages)

        chat.copy("max_output_tokens", from: request, as: "max_completion_tokens")
        chat.copy("temperature", from: request)
        chat.copy("top_p", from: request)
        chat.copy("user", from: request)
        chat.copy("service_tier", from: request)
        chat.copy("prompt_cache_key", from: request)
        chat.copy("prompt_cache_retention", from: request)
        chat.copy("safety_identifier", from: request)
        if request["stream"]?.bool == true {
            chat["stream"] = true
            chat["stream_options"] = ["include_usage": true]  // response.completed carries the usage
        }
        let tools = try (request["tools"]?.elements ?? []).enumerated().map(tool)
        // Chat refuses an empty tools list, and tool_choice or parallel_tool_calls without tools,
        // which Responses clients send freely.
        if !tools.isEmpty {
            chat["tools"] = JSON(array: tools)
            if let choice = request["tool_choice"], !choice.isNull { chat["tool_choice"] = try toolChoice(choice) }
            chat.copy("parallel_tool_calls", from: request)
        }
        if let text = request["text"], !text.isNull {
            if let format = text["format"], !format.isNull, let responseFormat = try responseFormat(format) {
                chat["response_format"] = responseFormat
            }
            chat.copy("verbosity", from: text)
        }
        if let effort = request["reasoning"]?["effort"], !effort.isNull { chat["reasoning_effort"] = effort }
        return chat
    }

    /// Top-level fields: each one is translated below, dropped because it means nothing to the
    /// provider once translated, or refused because the provider cannot honour it.
    private static func checkField(_ key: String, _ value: JSON) throws {
        switch key {
        case "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "user", "service_tier",
             "prompt_cache_key", "prompt_cache_retention", "safety_identifier", "stream", "tools", "tool_choice",
             "parallel_tool_calls", "text", "reasoning":
            break
        case "metadata", "store", "include", "stream_options":
            break  // the gateway's own business (the response-store plugin, if any); nothing upstream
        case "truncation":
            guard value.string == "disabled" || value.string == "auto" else {
                throw GatewayError.invalidRequest("truncation must be \"auto\" or \"disabled\"", param: key)
            }
        case "background":
            guard value.bool == false else {
                throw GatewayError.invalidRequest("background responses are not supported when the model's provider does not speak the Responses API",
                                                  param: key)
            }
        case "previous_response_id":
            throw GatewayError.invalidRequest("previous_response_id needs the response-store plugin on this gateway when the model's provider does not speak the Responses API",
                                              param: key)
        default:
            throw GatewayError.invalidRequest("\(key) is not supported when the model's provider does not speak the Responses API", param: key)
        }
    }

    /// The input items as chat messages. An assistant turn is several items in Responses (its
    /// reasoning, its text, each function call) and one message in chat.
    private struct Conversation {
        var messages: [JSON] = []
        /// Reasoning text waiting for the assistant message it belongs to.
        var reasoning: [String] = []
        var reasoningSignature: String?

        mutating func add(_ item: JSON, at path: String) throws {
            guard item.isObject else { throw GatewayError.invalidRequest("an input item must be an object", param: path) }
            let type = item["type"]?.string ?? (item["role"] != nil ? "message" : "")
            switch type {
            case "message":
                try addMessage(item, at: path)
            case "function_call":
                let call: JSON = ["id": item["call_id"] ?? "", "type": "function",
                                  "function": ["name": item["name"] ?? "", "arguments": item["arguments"] ?? "{}"]]
                var assistant = takeAssistant()
                var calls = assistant["tool_calls"] ?? .array()
                calls.append(call)
                assistant["tool_calls"] = calls
                messages.append(assistant)
            case "function_call_output":
                let output = item["output"] ?? ""
                let text: String
                if let string = output.string {
                    text = string
                } else {
                    text = try output.elements.enumerated().map { index, part in
                        guard part["type"]?.string == "input_text" || part["type"]?.string == "output_text" else {
                            throw GatewayError.invalidRequest("only text function call output is supported when the model's provider does not speak the Responses API",
                                                              param: "\(path).output[\(index)].type")
                        }
                        return part["text"]?.string ?? ""
                    }.joined()
                }
                messages.append(["role": "tool", "tool_call_id": item["call_id"] ?? "", "content": JSON(text)])
            case "reasoning":
                let parts = (item["summary"]?.elements ?? []) + (item["content"]?.elements ?? [])
                let text = parts.compactMap { $0["text"]?.string }.joined(separator: "\n")
                if !text.isEmpty { reasoning.append(text) }
                if let signature = Reasoning.signature(encryptedContent: item["encrypted_content"]?.string) { reasoningSignature = signature }
            case "item_reference":
                throw GatewayError.invalidRequest("item references need the response-store plugin on this gateway when the model's provider does not speak the Responses API",
                                                  param: "\(path).type")
            default:
                throw GatewayError.invalidRequest("input items of type \"\(type)\" are not supported when the model's provider does not speak the Responses API",
                                                  param: "\(path).type")
            }
        }

        private mutating func addMessage(_ item: JSON, at path: String) throws {
            let role = item["role"]?.string ?? ""
            let content = item["content"] ?? .null
            switch role {
            case "user", "system", "developer":
                // Many OpenAI-compatible servers know no developer role; system means the same to them.
                let chatRole = role == "user" ? "user" : "system"
                if let text = content.string {
                    messages.append(["role": JSON(chatRole), "content": JSON(text)])
                    return
                }
                var parts: [JSON] = []
                for (index, part) in content.elements.enumerated() {
                    let partPath = "\(path).content[\(index)]"
                    switch part["type"]?.string {
                    case "input_text", "output_text":
                        parts.append(["type": "text", "text": part["text"] ?? ""])
                    case "input_image" where role == "user":
                        guard let url = part["image_url"]?.string else {
                            let param = part["file_id"].map { !$0.isNull } == true ? "\(partPath).file_id" : "\(partPath).image_url"
                            throw GatewayError.invalidRequest("an image must be given by image_url (a URL or data URL) when the model's provider does not speak the Responses API",
                                                              param: param)
                        }
                        var image: JSON = ["url": JSON(url)]
                        image.copy("detail", from: part)
                        parts.append(["type": "image_url", "image_url": image])
                    default:
                        throw GatewayError.invalidRequest("this content part type is not supported when the model's provider does not speak the Responses API",
                                                          param: "\(partPath).type")
                    }
                }
                if chatRole == "system" || (parts.count == 1 && parts[0]["type"]?.string == "text") {
                    messages.append(["role": JSON(chatRole), "content": JSON(parts.compactMap { $0["text"]?.string }.joined(separator: "\n"))])
                } else {
                    messages.append(["role": "user", "content": JSON(array: parts)])
                }
            case "assistant":
                var text = content.string ?? ""
                for (index, part) in content.elements.enumerated() {
                    switch part["type"]?.string {
                    case "output_text", "input_text": text += part["text"]?.string ?? ""
                    case "refusal": text += part["refusal"]?.string ?? ""
                    default:
                        throw GatewayError.invalidRequest("this content part type is not supported in an assistant message",
                                                          param: "\(path).content[\(index)].type")
                    }
                }
                var assistant = takeAssistant(startingNew: true)
                assistant["content"] = JSON(text)
                messages.append(assistant)
            default:
                throw GatewayError.invalidRequest("role must be one of user, assistant, system or developer", param: "\(path).role")
            }
        }

        /// The assistant message to add to: the last message when it is the assistant's and no text
        /// is being started after it, else a new one. It carries any reasoning that came before.
        private mutating func takeAssistant(startingNew: Bool = false) -> JSON {
            var assistant: JSON
            if !startingNew, let last = messages.last, last["role"]?.string == "assistant" {
                assistant = messages.removeLast()
            } else {
                assistant = ["role": "assistant", "content": .null]
            }
            if !reasoning.isEmpty {
                let earlier = assistant["reasoning_content"]?.string.map { [$0] } ?? []
                assistant["reasoning_content"] = JSON((earlier + reasoning).joined(separator: "\n"))
                if let reasoningSignature { assistant[Reasoning.signatureKey] = JSON(reasoningSignature) }
                reasoning = []
                reasoningSignature = nil
            }
            return assistant
        }
    }

    private static func tool(_ index: Int, _ tool: JSON) throws -> JSON {
        guard tool["type"]?.string == "function" else {
            let type = tool["type"]?.string.map { "\"\($0)\"" } ?? "this"
            throw GatewayError.invalidRequest("\(type) tools are not supported when the model's provider does not speak the Responses API; only function tools are",
                                              param: "tools[\(index)].type")
        }
        var function: JSON = ["name": tool["name"] ?? ""]
        function.copy("description", from: tool)
        function.copy("parameters", from: tool)
        function.copy("strict", from: tool)
        return ["type": "function", "function": function]
    }

    private static func toolChoice(_ choice: JSON) throws -> JSON {
        if choice.string != nil { return choice }
        switch choice["type"]?.string {
        case "function":
            return ["type": "function", "function": ["name": choice["name"] ?? ""]]
        case "allowed_tools":
            let tools = try (choice["tools"]?.elements ?? []).enumerated().map { index, tool in
                guard tool["type"]?.string == "function" else {
                    throw GatewayError.invalidRequest("only function tools can be allowed when the model's provider does not speak the Responses API",
                                                      param: "tool_choice.tools[\(index)].type")
                }
                return ["type": "function", "function": ["name": tool["name"] ?? ""]] as JSON
            }
            return ["type": "allowed_tools", "allowed_tools": ["mode": choice["mode"] ?? "auto", "tools": JSON(array: tools)]]
        default:
            throw GatewayError.invalidRequest("this tool_choice is not supported when the model's provider does not speak the Responses API",
                                              param: "tool_choice.type")
        }
    }

    /// `text.format` as chat's `response_format`; nil for plain text, which is chat's default.
    private static func responseFormat(_ format: JSON) throws -> JSON? {
        switch format["type"]?.string {
        case "text":
            return nil
        case "json_object":
            return ["type": "json_object"]
        case "json_schema":
            var schema: JSON = ["name": format["name"] ?? "response"]
            schema.copy("description", from: format)
            schema.copy("schema", from: format)
            schema.copy("strict", from: format)
            return ["type": "json_schema", "json_schema": schema]
        default:
            throw GatewayError.invalidRequest("text.format.type must be text, json_object or json_schema", param: "text.format.type")
        }
    }
}
