import Kernel
import NIOCore

/// Replaces e-mail addresses with a marker: in the user's messages before any provider sees
/// them, and in the answer on its way back, whole or streamed (`StreamMasker` catches an address
/// that a model spreads over several events).
public struct PIIMask: Middleware {
    public static let name = "pii-mask"
    public static let summary = "replaces e-mail addresses in user messages and in answers, streams included"

    public struct Settings: PluginSettings {
        @Setting("replacement", "what each e-mail address is replaced with") public var replacement = "[email]"
        public init() {}
    }

    let replacement: String

    public init(settings: Settings, context: PluginContext) throws {
        replacement = settings.replacement
        guard EmailAddress.masked(in: replacement, with: "") == replacement else {
            throw context.configError("replacement", "must not itself contain an e-mail address")
        }
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation == .chatCompletions || request.operation == .messages else { return try await next(request) }
        var request = request
        maskUserMessages(in: &request.body)
        var response = try await next(request)
        switch response.body {
        case .whole(let bytes):
            guard bytes.readableBytesView.contains(UInt8(ascii: "@")),
                  let answer = try? JSON.parse(bytes) else { return response }
            response.body = .whole(maskedAnswer(answer).encoded(using: request.context.allocator))
            response.headers.remove(name: "content-length")
        case .events(let events):
            let replacement = replacement
            response.body = .events(events.translating { StreamMasker(replacement: replacement) })
        }
        return response
    }

    func mask(_ text: String) -> String { EmailAddress.masked(in: text, with: replacement) }

    /// Masks the text of each user message: a string (OpenAI, Anthropic) or parts/blocks with
    /// `text`. Only a real change is written, so a body without addresses goes upstream as sent.
    func maskUserMessages(in body: inout RequestBody) {
        let messages = body.json["messages"]?.elements ?? []
        for (index, message) in messages.enumerated() where message["role"]?.string == "user" {
            if let text = message["content"]?.string {
                let masked = mask(text)
                if masked != text { body.json["messages"]?[index]?["content"] = JSON(masked) }
            }
            for (part, block) in (message["content"]?.elements ?? []).enumerated() {
                guard let text = block["text"]?.string else { continue }
                let masked = mask(text)
                if masked != text { body.json["messages"]?[index]?["content"]?[part]?["text"] = JSON(masked) }
            }
        }
    }

    /// A whole answer: OpenAI `choices[].message.content`, Anthropic `content[].text`.
    func maskedAnswer(_ answer: JSON) -> JSON {
        var answer = answer
        for (index, choice) in (answer["choices"]?.elements ?? []).enumerated() {
            if let text = choice["message"]?["content"]?.string { answer["choices"]?[index]?["message"]?["content"] = JSON(mask(text)) }
        }
        for (index, block) in (answer["content"]?.elements ?? []).enumerated() {
            if let text = block["text"]?.string { answer["content"]?[index]?["text"] = JSON(mask(text)) }
        }
        return answer
    }
}
