import Kernel

/// The checks of the `validation` plugin, per operation. Each failure names the JSON path of
/// the field at fault.
struct RequestRules {
    struct Limits: Sendable {
        var maxTokensCap: Int?
        var clamp: Bool
        var maxMessages: Int
        var maxTotalCharacters: Int?
        var blockedParams: Set<String>
        var allowedParams: Set<String>?
    }

    let limits: Limits
    /// Read where it lies: the client's bytes, unless a plugin before made a tree of them.
    let body: JSONView
    /// Token limits above the cap, lowered to it (when clamping).
    private(set) var clamps: [(key: String, cap: Int)] = []

    init(limits: Limits, body: JSONView) {
        self.limits = limits
        self.body = body
    }

    /// Numbers (ranges of temperature, n, max_tokens, …) are the front door's: it refuses them
    /// for every request, with or without this plugin. These are the rules beyond them.
    mutating func check(_ operation: APIOperation) throws {
        for key in body.keys {
            if limits.blockedParams.contains(key) || limits.allowedParams.map({ !$0.contains(key) && key != "model" }) == true {
                throw fail(key, "the parameter \(key) is not allowed on this gateway")
            }
        }
        switch operation {
        case .chatCompletions: try checkChat()
        case .embeddings: try checkEmbeddings()
        case .messages: try checkMessages()
        case .responses: try checkResponses()
        case .moderations, .listModels, .storedResponse, .deleteStoredResponse, .storedResponseInputItems, .other, .mcp: break
        }
    }

    // MARK: OpenAI chat

    /// What a message's checks read, found in one walk over each message.
    private static let chatMessageFields = ["role", "content", "tool_calls", "tool_call_id"]
    private static let messageFields = ["role", "content"]

    private mutating func checkChat() throws {
        let messages = try messageList()
        var toolCallIDs: Set<String> = []
        var characters = 0
        for (index, message) in messages.enumerated() {
            var path: String { "messages[\(index)]" }
            guard message.isObject else { throw fail(path, "each message must be an object") }
            let fields = message.members(Self.chatMessageFields)
            let role = fields[0]?.string ?? "", content = fields[1], toolCalls = fields[2], toolCallID = fields[3]
            switch role {
            case "system", "developer", "user", "function":
                guard let content, content.isString || content.isArray else {
                    throw fail("\(path).content", "a \(role) message needs content: a string or an array of parts")
                }
            case "assistant":
                let hasCalls = toolCalls.map { $0.isArray && !$0.isEmpty } ?? false
                if let content, !(content.isString || content.isArray || (content.isNull && hasCalls)) {
                    throw fail("\(path).content", "content must be a string, an array of parts, or null with tool_calls")
                }
                if content == nil && !hasCalls { throw fail("\(path).content", "an assistant message needs content or tool_calls") }
                toolCallIDs = []
                for (callIndex, call) in (toolCalls?.elements ?? []).enumerated() {
                    guard let id = call["id"]?.string, call["function"]?["name"]?.string?.isEmpty == false else {
                        throw fail("\(path).tool_calls[\(callIndex)]", "a tool call needs an id and function.name")
                    }
                    toolCallIDs.insert(id)
                }
            case "tool":
                guard let id = toolCallID?.string else { throw fail("\(path).tool_call_id", "a tool message needs tool_call_id") }
                guard toolCallIDs.contains(id) else {
                    throw fail("\(path).tool_call_id", "a tool message must answer a tool call of the assistant message before it")
                }
            default:
                throw fail("\(path).role", "role must be one of system, developer, user, assistant, tool")
            }
            if role != "tool", role != "assistant" { toolCallIDs = [] }
            if counts { characters += content?.textCharacterCount ?? 0 }
        }
        try checkTotal(characters)
        try boolean("stream")
        try boolean("logprobs")
        try string("user")
        if let stop = body["stop"], !stop.isNull {
            guard stop.isString || (stop.isArray && stop.count <= 4 && stop.elements.allSatisfy { $0.isString }) else {
                throw fail("stop", "stop must be a string or an array of up to 4 strings")
            }
        }
        if let tools = body["tools"] {
            guard tools.isArray else { throw fail("tools", "tools must be an array") }
            for (index, tool) in tools.elements.enumerated() {
                guard tool["type"]?.string == "function" else { throw fail("tools[\(index)].type", "tool type must be \"function\"") }
                guard tool["function"]?["name"]?.string?.isEmpty == false else {
                    throw fail("tools[\(index)].function.name", "a tool needs a function name")
                }
            }
        }
        try maxTokens("max_tokens")
        try maxTokens("max_completion_tokens")
    }

    // MARK: OpenAI embeddings

    private func checkEmbeddings() throws {
        let valid: Bool
        if let input = body["input"], let string = input.string {
            valid = !string.isEmpty
        } else if let input = body["input"], input.isArray, input.count > 0 {
            let elements = input.elements
            valid = elements.allSatisfy { $0.isString } || elements.allSatisfy { $0.kind == .integer }
                || elements.allSatisfy { $0.isArray && $0.count > 0 && $0.elements.allSatisfy { $0.kind == .integer } }
        } else {
            valid = false
        }
        guard valid else { throw fail("input", "input must be a non-empty string, array of strings, or array of token arrays") }
        if let format = body["encoding_format"], format.string != "float" && format.string != "base64" {
            throw fail("encoding_format", "encoding_format must be \"float\" or \"base64\"")
        }
        try string("user")
    }

    // MARK: Anthropic messages

    private mutating func checkMessages() throws {
        let messages = try messageList()
        var characters = 0
        for (index, message) in messages.enumerated() {
            var path: String { "messages[\(index)]" }
            let fields = message.members(Self.messageFields)
            let role = fields[0]?.string
            guard role == "user" || role == "assistant" else { throw fail("\(path).role", "role must be \"user\" or \"assistant\"") }
            if index == 0, role != "user" { throw fail("\(path).role", "the first message must have the user role") }
            guard let content = fields[1], content.isString || content.isArray else {
                throw fail("\(path).content", "content must be a string or an array of content blocks")
            }
            for (blockIndex, block) in content.elements.enumerated() where block["type"]?.isString != true {
                throw fail("\(path).content[\(blockIndex)].type", "each content block needs a type")
            }
            if counts { characters += content.textCharacterCount }
        }
        try checkTotal(characters)
        guard body["max_tokens"]?.kind == .integer else { throw fail("max_tokens", "max_tokens must be an integer of at least 1") }
        try maxTokens("max_tokens")
        try boolean("stream")
        if let sequences = body["stop_sequences"], !(sequences.isArray && sequences.elements.allSatisfy { $0.isString }) {
            throw fail("stop_sequences", "stop_sequences must be an array of strings")
        }
        if let system = body["system"], !(system.isString || (system.isArray && system.elements.allSatisfy { $0["type"]?.string == "text" })) {
            throw fail("system", "system must be a string or an array of text blocks")
        }
        if let tools = body["tools"] {
            guard tools.isArray else { throw fail("tools", "tools must be an array") }
            for (index, tool) in tools.elements.enumerated() {
                guard tool["name"]?.string?.isEmpty == false else { throw fail("tools[\(index)].name", "a tool needs a name") }
                guard tool["input_schema"]?.isObject == true || tool["type"] != nil else {
                    throw fail("tools[\(index)].input_schema", "a tool needs an input_schema object")
                }
            }
        }
    }

    // MARK: OpenAI responses

    private mutating func checkResponses() throws {
        var characters = counts ? body["instructions"]?.string?.count ?? 0 : 0
        if let input = body["input"], !input.isNull {
            if let text = input.string {
                if counts { characters += text.count }
            } else {
                guard input.count <= limits.maxMessages else {
                    throw fail("input", "at most \(limits.maxMessages) input items are accepted, got \(input.count)")
                }
                for (index, item) in input.elements.enumerated() {
                    var path: String { "input[\(index)]" }
                    guard item.isObject else { throw fail(path, "each input item must be an object") }
                    switch item["type"]?.string ?? "message" {
                    case "message":
                        guard ["user", "assistant", "system", "developer"].contains(item["role"]?.string ?? "") else {
                            throw fail("\(path).role", "role must be one of user, assistant, system or developer")
                        }
                        guard let content = item["content"], content.isString || content.isArray else {
                            throw fail("\(path).content", "content must be a string or an array of content parts")
                        }
                        if counts { characters += content.textCharacterCount }
                    case "function_call":
                        guard item["call_id"]?.isString == true, item["name"]?.isString == true, item["arguments"]?.isString == true else {
                            throw fail(path, "a function_call item needs call_id, name and arguments (a string)")
                        }
                    case "function_call_output":
                        guard item["call_id"]?.isString == true, item["output"] != nil else {
                            throw fail(path, "a function_call_output item needs call_id and output")
                        }
                        if counts { characters += item["output"]?.string?.count ?? 0 }
                    default:
                        break  // reasoning and other items are the provider's to judge
                    }
                }
            }
        }
        if let limit = limits.maxTotalCharacters, characters > limit {
            throw fail("input", "the input holds \(characters) characters; at most \(limit) are accepted")
        }
        if let tools = body["tools"] {
            guard tools.isArray else { throw fail("tools", "tools must be an array") }
            for (index, tool) in tools.elements.enumerated() where tool["type"]?.string == "function" {
                guard tool["name"]?.string?.isEmpty == false else { throw fail("tools[\(index)].name", "a function tool needs a name") }
            }
        }
        try maxTokens("max_output_tokens")
        try boolean("stream")
        try boolean("store")
        try string("instructions")
        try string("previous_response_id")
    }

    // MARK: Shared checks

    /// Counting characters walks every string (grapheme by grapheme): only done when limited.
    private var counts: Bool { limits.maxTotalCharacters != nil }

    private func messageList() throws -> [JSONView] {
        let messages = body["messages"]?.elements ?? []
        guard messages.count <= limits.maxMessages else {
            throw fail("messages", "at most \(limits.maxMessages) messages are accepted, got \(messages.count)")
        }
        return messages
    }

    private func checkTotal(_ characters: Int) throws {
        if let limit = limits.maxTotalCharacters, characters > limit {
            throw fail("messages", "the messages hold \(characters) characters; at most \(limit) are accepted")
        }
    }

    private mutating func maxTokens(_ key: String) throws {
        guard let value = body[key], !value.isNull else { return }
        guard let tokens = value.int, tokens >= 1 else { throw fail(key, "\(key) must be an integer of at least 1") }
        guard let cap = limits.maxTokensCap, tokens > cap else { return }
        guard limits.clamp else { throw fail(key, "\(key) is \(tokens); this gateway accepts at most \(cap)") }
        clamps.append((key, cap))
    }

    private func boolean(_ key: String) throws {
        if let value = body[key], !value.isNull, value.bool == nil { throw fail(key, "\(key) must be true or false") }
    }

    private func string(_ key: String) throws {
        if let value = body[key], !value.isNull, !value.isString { throw fail(key, "\(key) must be a string") }
    }

    private func fail(_ param: String, _ message: String) -> GatewayError {
        GatewayError.invalidRequest(message, param: param, code: "invalid_value")
    }
}
