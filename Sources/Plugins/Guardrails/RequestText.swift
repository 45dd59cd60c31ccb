import Kernel

/// The text a model reads in a request, in each front door's format, for guardrails to check or
/// rewrite: Chat Completions messages (every role, string or parts, tool results included),
/// Anthropic `system` and messages (text blocks and `tool_result` contents), Responses
/// `instructions` and `input` (a string, `message` items' content and `function_call_output`
/// items' `output`), and the `input` of embeddings and moderations.
enum RequestText {
    /// Calls `visit` with each text; a string it returns replaces that text. Only a real change
    /// is written, so a request with nothing to change keeps the client's bytes.
    static func rewrite(_ body: inout RequestBody, operation: APIOperation, _ visit: (String) throws -> String?) rethrows {
        let json = body.json
        for (key, value) in json.members where isTextMember(key, operation: operation) {
            if let changed = try rewrite(value, member: key, operation: operation, visit) { body.json[key] = changed }
        }
    }

    /// Every text of the request, in order.
    static func collect(_ json: JSON, operation: APIOperation) -> [String] {
        var texts: [String] = []
        for (key, value) in json.members where isTextMember(key, operation: operation) {
            _ = rewrite(value, member: key, operation: operation) { texts.append($0); return nil }
        }
        return texts
    }

    private static func isTextMember(_ key: String, operation: APIOperation) -> Bool {
        switch operation {
        case .chatCompletions: key == "messages"
        case .messages: key == "messages" || key == "system"
        case .responses: key == "input" || key == "instructions"
        case .embeddings, .moderations: key == "input"
        default: false
        }
    }

    private static func rewrite(_ value: JSON, member: String, operation: APIOperation, _ visit: (String) throws -> String?) rethrows -> JSON? {
        switch member {
        case "messages": return try eachElement(value) { message in try field("content", of: message) { try content($0, visit) } }
        case "system", "instructions": return try content(value, visit)
        default:  // input
            if let text = value.string { return try visit(text).map { JSON($0) } }
            return try eachElement(value) { item in
                if let text = item.string { return try visit(text).map { JSON($0) } }
                if item["type"]?.string == "function_call_output" { return try field("output", of: item) { try content($0, visit) } }
                return try field("content", of: item) { try content($0, visit) }
            }
        }
    }

    /// A message's content: a string, or parts/blocks with `text` (and Anthropic's `tool_result`
    /// blocks, whose `content` is the same again).
    static func content(_ value: JSON, _ visit: (String) throws -> String?) rethrows -> JSON? {
        if let text = value.string { return try visit(text).map { JSON($0) } }
        return try eachElement(value) { part in
            if part["text"]?.string != nil { return try field("text", of: part) { try $0.string.flatMap { try visit($0) }.map { JSON($0) } } }
            if part["type"]?.string == "tool_result" { return try field("content", of: part) { try content($0, visit) } }
            return nil
        }
    }

    /// `value` with each element that `change` changed, or nil when none was.
    static func eachElement(_ value: JSON, _ change: (JSON) throws -> JSON?) rethrows -> JSON? {
        guard value.isArray else { return nil }
        var result: JSON?
        for (index, element) in value.elements.enumerated() {
            guard let changed = try change(element) else { continue }
            if result == nil { result = value }
            result?[index] = changed
        }
        return result
    }

    /// `object` with its member `key` changed, or nil when `change` left it alone.
    static func field(_ key: String, of object: JSON, _ change: (JSON) throws -> JSON?) rethrows -> JSON? {
        guard let member = object[key], let changed = try change(member) else { return nil }
        var result = object
        result[key] = changed
        return result
    }
}
