import Kernel

/// The text of a whole answer, in the client's format: Chat Completions
/// `choices[].message.content`, Messages `content[].text`, Responses `output[].content[].text`
/// (and `output_text`, where an SDK-shaped answer carries it).
enum AnswerText {
    static func rewrite(_ answer: JSON, _ visit: (String) throws -> String?) rethrows -> JSON? {
        var result: JSON?
        if let choices = answer["choices"], let changed = try RequestText.eachElement(choices, { choice in
            try RequestText.field("message", of: choice) { message in
                try RequestText.field("content", of: message) { try $0.string.flatMap { try visit($0) }.map { JSON($0) } }
            }
        }) {
            result = result ?? answer
            result?["choices"] = changed
        }
        if let content = answer["content"], let changed = try RequestText.content(content, visit) {
            result = result ?? answer
            result?["content"] = changed
        }
        if let output = answer["output"], let changed = try RequestText.eachElement(output, { item in
            try RequestText.field("content", of: item) { try RequestText.content($0, visit) }
        }) {
            result = result ?? answer
            result?["output"] = changed
        }
        if let text = answer["output_text"]?.string, let changed = try visit(text) {
            result = result ?? answer
            result?["output_text"] = JSON(changed)
        }
        return result
    }

    static func collect(_ answer: JSON) -> [String] {
        var texts: [String] = []
        _ = rewrite(answer) { texts.append($0); return nil }
        return texts
    }
}
