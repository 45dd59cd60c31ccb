import Kernel

/// An OpenAI chat completion request as a Gemini `generateContent` request, the body Google AI
/// Studio and Vertex AI both take (the model and streaming are in the URL, not the body).
///
/// What has no Gemini form is refused with a 400 naming the field, rather than dropped: a client
/// that asked for it would otherwise get an answer to a different question.
enum ChatToGeminiRequest {
    /// Gemini 3 wants the thought signature of each function call it made back with the call; an
    /// OpenAI client cannot keep it, and Google documents this value for history it did not sign.
    static let unsignedThought = "skip_thought_signature_validator"

    static func translate(_ chat: JSON) throws -> JSON {
        if let modalities = chat["modalities"]?.elements, modalities.contains(where: { $0.string == "audio" }) {
            throw GatewayError.invalidRequest("audio output is not supported by this model's provider (Gemini)", param: "modalities")
        }
        var request = JSON.object()
        var system: [String] = []
        var contents: [JSON] = []
        // Gemini names a function's result by the function, OpenAI by the call's id.
        var functionNames: [String: String] = [:]

        for (index, message) in (chat["messages"]?.elements ?? []).enumerated() {
            let path = "messages[\(index)]"
            switch message["role"]?.string {
            case "system", "developer":
                system.append(text(of: message["content"]))
            case "user":
                append(role: "user", parts: try userParts(message["content"], at: path + ".content"), to: &contents)
            case "assistant":
                var parts: [JSON] = []
                let words = text(of: message["content"])
                if !words.isEmpty { parts.append(["text": JSON(words)]) }
                for (callIndex, call) in (message["tool_calls"]?.elements ?? []).enumerated() {
                    let name = call["function"]?["name"]?.string ?? ""
                    let arguments = call["function"]?["arguments"]?.string ?? ""
                    guard let args = try? JSON.parse(arguments.isEmpty ? "{}" : arguments), args.isObject else {
                        throw GatewayError.invalidRequest("a tool call's arguments must be a JSON object",
                                                          param: "\(path).tool_calls[\(callIndex)].function.arguments")
                    }
                    if let id = call["id"]?.string { functionNames[id] = name }
                    var part: JSON = ["functionCall": ["name": JSON(name), "args": args]]
                    if callIndex == 0 { part["thoughtSignature"] = JSON(unsignedThought) }
                    parts.append(part)
                }
                append(role: "model", parts: parts, to: &contents)
            case "tool":
                guard let id = message["tool_call_id"]?.string, let name = functionNames[id] else {
                    throw GatewayError.invalidRequest("no earlier assistant message made a tool call with this id", param: path + ".tool_call_id")
                }
                let result: JSON = ["functionResponse": ["name": JSON(name), "response": ["content": JSON(text(of: message["content"]))]]]
                append(role: "user", parts: [result], to: &contents)
            default:
                throw GatewayError.invalidRequest("unsupported message role", param: path + ".role")
            }
        }
        request["contents"] = JSON(array: contents)
        let instructions = system.filter { !$0.isEmpty }
        if !instructions.isEmpty { request["systemInstruction"] = ["parts": [["text": JSON(instructions.joined(separator: "\n\n"))]]] }
        if let tools = try functionDeclarations(chat["tools"]) { request["tools"] = [["functionDeclarations": JSON(array: tools)]] }
        if let config = try toolConfig(chat["tool_choice"]) { request["toolConfig"] = ["functionCallingConfig": config] }
        let generation = try generationConfig(chat)
        if generation.count > 0 { request["generationConfig"] = generation }
        return request
    }

    // MARK: Messages

    /// Gemini wants turns to alternate: consecutive messages of one role become one turn (several
    /// tool results answer one turn of function calls).
    private static func append(role: String, parts: [JSON], to contents: inout [JSON]) {
        guard !parts.isEmpty else { return }
        if let last = contents.indices.last, contents[last]["role"]?.string == role, var existing = contents[last]["parts"] {
            for part in parts { existing.append(part) }
            contents[last]["parts"] = existing
        } else {
            contents.append(["role": JSON(role), "parts": JSON(array: parts)])
        }
    }

    /// The text of a content value: a string, or the text parts of an array.
    static func text(of content: JSON?) -> String {
        guard let content else { return "" }
        if let string = content.string { return string }
        return content.elements.compactMap { $0["type"]?.string == "text" ? $0["text"]?.string : nil }.joined(separator: "\n")
    }

    private static func userParts(_ content: JSON?, at path: String) throws -> [JSON] {
        guard let content, !content.isNull else { return [] }
        if let text = content.string { return [["text": JSON(text)]] }
        return try content.elements.enumerated().map { index, part -> JSON in
            let at = "\(path)[\(index)]"
            switch part["type"]?.string {
            case "text":
                return ["text": JSON(part["text"]?.string ?? "")]
            case "image_url":
                return try media(part["image_url"]?["url"]?.string ?? "", at: at + ".image_url.url")
            case "input_audio":
                let format = part["input_audio"]?["format"]?.string ?? "wav"
                return ["inlineData": ["mimeType": JSON("audio/" + (format == "mp3" ? "mpeg" : format)),
                                       "data": JSON(part["input_audio"]?["data"]?.string ?? "")]]
            case "file":
                guard let data = part["file"]?["file_data"]?.string else {
                    throw GatewayError.invalidRequest("only files given inline (file_data) reach this model's provider (Gemini)", param: at + ".file")
                }
                return try media(data, at: at + ".file.file_data")
            default:
                throw GatewayError.invalidRequest("this content part type is not supported by the provider (Gemini)", param: at + ".type")
            }
        }
    }

    /// A data URL as inline bytes; an http(s) or gs:// URL as a file Gemini fetches, whose type
    /// must be told (guessed from the name).
    static func media(_ url: String, at path: String) throws -> JSON {
        if url.hasPrefix("data:") {
            guard let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64") else {
                throw GatewayError.invalidRequest("expected a base64 data URL (data:TYPE;base64,…)", param: path)
            }
            let mimeType = url[url.index(url.startIndex, offsetBy: 5)..<comma].dropLast(";base64".count)
            return ["inlineData": ["mimeType": JSON(String(mimeType)), "data": JSON(String(url[url.index(after: comma)...]))]]
        }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") || url.hasPrefix("gs://") else {
            throw GatewayError.invalidRequest("expected a data URL or an http(s) URL", param: path)
        }
        guard let mimeType = MediaType.guess(fromURL: url) else {
            throw GatewayError.invalidRequest("the provider (Gemini) needs the media type of a linked file, and this URL's name does not tell it; send the file as a data URL",
                                              param: path)
        }
        return ["fileData": ["mimeType": JSON(mimeType), "fileUri": JSON(url)]]
    }

    // MARK: Tools

    private static func functionDeclarations(_ tools: JSON?) throws -> [JSON]? {
        guard let tools, tools.count > 0 else { return nil }
        return try tools.elements.enumerated().map { index, tool -> JSON in
            guard tool["type"]?.string == "function", let function = tool["function"] else {
                throw GatewayError.invalidRequest("only function tools are supported by this model's provider (Gemini)", param: "tools[\(index)].type")
            }
            var declaration: JSON = ["name": JSON(function["name"]?.string ?? "")]
            if let description = function["description"]?.string { declaration["description"] = JSON(description) }
            if let parameters = function["parameters"], let schema = GeminiSchema.parameters(parameters) { declaration["parameters"] = schema }
            return declaration
        }
    }

    private static func toolConfig(_ choice: JSON?) throws -> JSON? {
        guard let choice, !choice.isNull else { return nil }
        switch choice.string {
        case "auto": return ["mode": "AUTO"]
        case "none": return ["mode": "NONE"]
        case "required": return ["mode": "ANY"]
        case nil:
            guard let name = choice["function"]?["name"]?.string else {
                throw GatewayError.invalidRequest("expected \"auto\", \"none\", \"required\" or a function", param: "tool_choice")
            }
            return ["mode": "ANY", "allowedFunctionNames": [JSON(name)]]
        default:
            throw GatewayError.invalidRequest("expected \"auto\", \"none\", \"required\" or a function", param: "tool_choice")
        }
    }

    // MARK: Generation

    private static func generationConfig(_ chat: JSON) throws -> JSON {
        var config = JSON.object()
        if let temperature = chat["temperature"]?.double { config["temperature"] = JSON(temperature) }
        if let topP = chat["top_p"]?.double { config["topP"] = JSON(topP) }
        if let maxTokens = chat["max_completion_tokens"]?.int ?? chat["max_tokens"]?.int { config["maxOutputTokens"] = JSON(maxTokens) }
        if let n = chat["n"]?.int, n != 1 { config["candidateCount"] = JSON(n) }
        if let stop = chat["stop"], !stop.isNull {
            let sequences = stop.string.map { [JSON($0)] } ?? stop.elements
            if !sequences.isEmpty { config["stopSequences"] = JSON(array: sequences) }
        }
        if let penalty = chat["presence_penalty"]?.double { config["presencePenalty"] = JSON(penalty) }
        if let penalty = chat["frequency_penalty"]?.double { config["frequencyPenalty"] = JSON(penalty) }
        if let seed = chat["seed"]?.int { config["seed"] = JSON(seed) }
        if let format = chat["response_format"], !format.isNull {
            switch format["type"]?.string {
            case "text":
                break
            case "json_object":
                config["responseMimeType"] = "application/json"
            case "json_schema":
                config["responseMimeType"] = "application/json"
                if let schema = format["json_schema"]?["schema"] { config["responseJsonSchema"] = schema }
            default:
                throw GatewayError.invalidRequest("expected \"text\", \"json_object\" or \"json_schema\"", param: "response_format.type")
            }
        }
        return config
    }
}
