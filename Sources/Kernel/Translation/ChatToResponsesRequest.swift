/// An OpenAI chat completion request as an OpenAI Responses request, for a provider that speaks
/// only Responses.
enum ChatToResponsesRequest {
    static func translate(_ chat: JSON, model: String) throws -> JSON {
        if let n = chat["n"]?.int, n > 1 {
            throw GatewayError.invalidRequest("n > 1 is not supported by this model's provider (it speaks only the Responses API)", param: "n")
        }
        try refuseUntranslatable(chat)
        var request: JSON = ["model": JSON(model)]
        var instructions: [String] = []
        var input: [JSON] = []

        for (index, message) in (chat["messages"]?.elements ?? []).enumerated() {
            let path = "messages[\(index)]"
            switch message["role"]?.string {
            case "system", "developer":
                let text = message["content"]?.plainText ?? ""
                // Leading system messages are the instructions; later ones stay where they were said.
                if input.isEmpty {
                    instructions.append(text)
                } else {
                    input.append(["type": "message", "role": message["role"]!, "content": JSON(text)])
                }
            case "user":
                input.append(["type": "message", "role": "user", "content": try userContent(message["content"], at: "\(path).content")])
            case "assistant":
                // Earlier reasoning (`reasoning_content`) is left out: a Responses reasoning item
                // needs the id the provider gave it, which a chat client never saw.
                if let content = message["content"], !content.isNull {
                    let text = content.string ?? content.elements.compactMap { part in
                        part["type"]?.string == "text" ? part["text"]?.string : part["refusal"]?.string
                    }.joined()
                    if !text.isEmpty { input.append(["type": "message", "role": "assistant", "content": JSON(text)]) }
                }
                for call in message["tool_calls"]?.elements ?? [] {
                    input.append(["type": "function_call", "call_id": call["id"] ?? "",
                                  "name": call["function"]?["name"] ?? "", "arguments": call["function"]?["arguments"] ?? "{}"])
                }
            case "tool":
                input.append(["type": "function_call_output", "call_id": message["tool_call_id"] ?? "",
                              "output": JSON(message["content"]?.plainText ?? "")])
            default:
                throw GatewayError.invalidRequest("unsupported message role", param: "\(path).role")
            }
        }
        if !instructions.isEmpty { request["instructions"] = JSON(instructions.joined(separator: "\n\n")) }
        request["input"] = JSON(array: input)

        if let maxTokens = chat["max_completion_tokens"], !maxTokens.isNull {
            request["max_output_tokens"] = maxTokens
        } else {
            request.copy("max_tokens", from: chat, as: "max_output_tokens")
        }
        request.copy("temperature", from: chat)
        request.copy("top_p", from: chat)
        request.copy("user", from: chat)
        request.copy("metadata", from: chat)
        request.copy("service_tier", from: chat)
        request.copy("prompt_cache_key", from: chat)
        request.copy("prompt_cache_retention", from: chat)
        request.copy("safety_identifier", from: chat)
        if chat["stream"]?.bool == true { request["stream"] = true }
        if let tools = chat["tools"], !tools.isNull {
            request["tools"] = JSON(array: try tools.elements.enumerated().map(tool))
        }
        if let choice = chat["tool_choice"], !choice.isNull { request["tool_choice"] = try toolChoice(choice) }
        request.copy("parallel_tool_calls", from: chat)
        var text = JSON.object()
        if let format = chat["response_format"], !format.isNull { text["format"] = try textFormat(format) }
        text.copy("verbosity", from: chat)
        if text.count > 0 { request["text"] = text }
        if let effort = chat["reasoning_effort"], !effort.isNull { request["reasoning"] = ["effort": effort] }
        // The chat client cannot fetch a stored response, and the gateway keeps no ids for it.
        request["store"] = false
        return request
    }

    /// Chat settings the Responses API has no counterpart for: dropping them would change the
    /// answer without telling the client.
    private static func refuseUntranslatable(_ chat: JSON) throws {
        func isSet(_ key: String) -> Bool {
            guard let value = chat[key], !value.isNull else { return false }
            if let number = value.double { return number != 0 }
            if let flag = value.bool { return flag }
            if value.isArray || value.isObject { return value.count > 0 }
            return true
        }
        for key in ["stop", "logprobs", "top_logprobs", "frequency_penalty", "presence_penalty", "logit_bias", "audio",
                    "modalities", "prediction", "web_search_options", "functions", "function_call"] where isSet(key) {
            if key == "modalities", chat[key]!.elements.allSatisfy({ $0.string == "text" }) { continue }
            throw GatewayError.invalidRequest("\(key) is not supported by this model's provider (it speaks only the Responses API)", param: key)
        }
    }

    private static func userContent(_ content: JSON?, at path: String) throws -> JSON {
        guard let content, !content.isNull else { return "" }
        if content.string != nil { return content }
        return JSON(array: try content.elements.enumerated().map { index, part in
            switch part["type"]?.string {
            case "text":
                return ["type": "input_text", "text": part["text"] ?? ""]
            case "image_url":
                return ["type": "input_image", "image_url": part["image_url"]?["url"] ?? "",
                        "detail": part["image_url"]?["detail"] ?? "auto"]
            default:
                throw GatewayError.invalidRequest("this content part type is not supported by this model's provider (it speaks only the Responses API)",
                                                  param: "\(path)[\(index)].type")
            }
        })
    }

    private static func tool(_ index: Int, _ tool: JSON) throws -> JSON {
        guard tool["type"]?.string == "function", let function = tool["function"], function.isObject else {
            throw GatewayError.invalidRequest("only function tools are supported by this model's provider (it speaks only the Responses API)",
                                              param: "tools[\(index)].type")
        }
        var converted: JSON = ["type": "function", "name": function["name"] ?? ""]
        converted.copy("description", from: function)
        converted["parameters"] = function["parameters"] ?? ["type": "object", "properties": .object()]
        // Chat's functions are not strict unless asked; a Responses function is unless told otherwise.
        converted["strict"] = function["strict"].flatMap { $0.isNull ? nil : $0 } ?? false
        return converted
    }

    private static func toolChoice(_ choice: JSON) throws -> JSON {
        if choice.string != nil { return choice }
        switch choice["type"]?.string {
        case "function":
            return ["type": "function", "name": choice["function"]?["name"] ?? ""]
        case "allowed_tools":
            let allowed = choice["allowed_tools"] ?? .object()
            let tools = (allowed["tools"]?.elements ?? []).map { tool -> JSON in
                ["type": "function", "name": tool["function"]?["name"] ?? ""]
            }
            return ["type": "allowed_tools", "mode": allowed["mode"] ?? "auto", "tools": JSON(array: tools)]
        default:
            throw GatewayError.invalidRequest("this tool_choice is not supported by this model's provider (it speaks only the Responses API)",
                                              param: "tool_choice")
        }
    }

    private static func textFormat(_ format: JSON) throws -> JSON {
        switch format["type"]?.string {
        case "text": return ["type": "text"]
        case "json_object": return ["type": "json_object"]
        case "json_schema":
            let schema = format["json_schema"] ?? .object()
            var converted: JSON = ["type": "json_schema", "name": schema["name"] ?? "response"]
            converted.copy("description", from: schema)
            converted["schema"] = schema["schema"] ?? .object()
            converted.copy("strict", from: schema)
            return converted
        default:
            throw GatewayError.invalidRequest("response_format.type must be text, json_object or json_schema", param: "response_format.type")
        }
    }
}
