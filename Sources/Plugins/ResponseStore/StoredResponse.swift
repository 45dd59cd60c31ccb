import Foundation
import Kernel

/// A kept Responses answer: who created it, the whole conversation that led to it (earlier
/// turns expanded), and the Response object itself.
struct StoredResponse: Sendable {
    /// The caller's key name; another key never sees the record.
    var owner: String
    /// Every input item of this turn, earlier turns included, each with an `id`.
    var input: [JSON]
    var response: JSON

    /// The conversation so far, as the input items a next turn continues from.
    var conversation: [JSON] { input + (response["output"]?.elements ?? []) }

    var json: JSON { ["owner": JSON(owner), "input": JSON(array: input), "response": response] }

    init(owner: String, input: [JSON], response: JSON) {
        self.owner = owner
        self.input = input
        self.response = response
    }

    init?(json: JSON) {
        guard let owner = json["owner"]?.string, let input = json["input"], input.isArray, let response = json["response"] else { return nil }
        self.init(owner: owner, input: input.elements, response: response)
    }

    /// A request's `input` as items: a string is one user message; items without an id get one,
    /// as OpenAI lists them (`GET /v1/responses/{id}/input_items`).
    static func items(_ input: JSON?) -> [JSON] {
        guard let input, !input.isNull else { return [] }
        if let text = input.string {
            return [["id": JSON(itemID("msg")), "type": "message", "role": "user", "content": [["type": "input_text", "text": JSON(text)]]]]
        }
        return input.elements.map { item in
            guard item.isObject else { return item }
            var item = item
            let type = item["type"]?.string ?? "message"
            if item["type"] == nil { item["type"] = "message" }
            // Listed as OpenAI lists them: a message's text as a part of its own.
            if type == "message", let text = item["content"]?.string {
                let part = item["role"]?.string == "assistant" ? "output_text" : "input_text"
                item["content"] = [["type": JSON(part), "text": JSON(text)]]
            }
            if type == "message", item["status"] == nil { item["status"] = "completed" }
            if item["id"] == nil {
                item["id"] = JSON(itemID(type == "message" ? "msg" : type == "function_call_output" ? "fco" : "item"))
            }
            return item
        }
    }

    static func itemID(_ prefix: String) -> String {
        prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }
}
