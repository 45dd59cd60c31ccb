import Foundation
import Testing
@testable import Kernel

/// Recorded request/response/stream pairs for the translators between Chat Completions, Messages
/// and Responses, one file per
/// case in `Golden/`. To re-record after a deliberate change: `SLUICE_RECORD_GOLDEN=1 swift test
/// --filter Golden`, then review the diff like any other change.
@Suite struct GoldenTranslationTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    static let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()

    @Test(arguments: files)
    func translatesAsRecorded(_ file: String) throws {
        let url = Self.folder.appendingPathComponent(file)
        var golden = try JSON.parse(try Data(contentsOf: url))
        let actual: JSON
        do {
            actual = try Self.run(golden)
        } catch {
            actual = Self.describe(error)
        }
        if ProcessInfo.processInfo.environment["SLUICE_RECORD_GOLDEN"] == "1" {
            golden["expected"] = actual
            try Data(golden.encoded()).write(to: url)
            return
        }
        #expect(Self.stable(actual) == Self.stable(golden["expected"] ?? .null), "\(file): got \(actual)")
    }

    static func run(_ golden: JSON) throws -> JSON {
        let input = golden["input"] ?? .null
        let model = golden["model"]?.string ?? "upstream-model"
        switch golden["translation"]?.string {
        case "chat_to_messages_request":
            return try ChatToMessagesRequest.translate(input, model: model)
        case "messages_to_chat_request":
            return try MessagesToChatRequest.translate(input, model: model)
        case "message_to_completion":
            return ResponseTranslation.completion(fromMessage: input)
        case "completion_to_message":
            return ResponseTranslation.message(fromCompletion: input)
        case "anthropic_stream_to_openai":
            var translator = AnthropicToOpenAIStream(includeUsage: golden["include_usage"]?.bool ?? false)
            return try translate(input, with: &translator)
        case "openai_stream_to_anthropic":
            var translator = OpenAIToAnthropicStream(asked: golden["asked"] ?? .null)
            return try translate(input, with: &translator)
        case "responses_to_chat_request":
            return try ResponsesToChatRequest.translate(input, model: model)
        case "chat_to_responses_request":
            return try ChatToResponsesRequest.translate(input, model: model)
        case "completion_to_response":
            return ResponseObject.response(fromCompletion: input, asked: golden["asked"] ?? .object())
        case "response_to_completion":
            return try ResponseObject.completion(fromResponse: input)
        case "chat_stream_to_responses":
            var translator = ChatToResponsesStream(asked: golden["asked"] ?? .object())
            return try translate(input, with: &translator)
        case "responses_stream_to_chat":
            var translator = ResponsesToChatStream(includeUsage: golden["include_usage"]?.bool ?? false)
            return try translate(input, with: &translator)
        default:
            Issue.record("unknown translation \(golden["translation"] ?? .null)")
            return .null
        }
    }

    /// Feeds recorded events (`{"event"?, "data"}` with data as JSON or "[DONE]") through a
    /// translator; the output has the same shape. An error ends the list as `{"error": …}`.
    static func translate<T: EventTranslator>(_ events: JSON, with translator: inout T) throws -> JSON {
        var output = JSON.array()
        func record(_ produced: [SSEEvent]) {
            for event in produced {
                var item: JSON = ["data": event.json ?? JSON(event.data)]
                if let name = event.event { item["event"] = JSON(name) }
                output.append(item)
            }
        }
        do {
            for item in events.elements {
                let data = item["data"].map { $0.string ?? $0.description } ?? ""
                record(try translator.translate(SSEEvent(event: item["event"]?.string, data: data)))
            }
            record(try translator.finish())
        } catch {
            output.append(describe(error))
        }
        return output
    }

    /// An error as recorded: its description, and the field it names when it names one.
    static func describe(_ error: any Error) -> JSON {
        var json: JSON = ["error": JSON(String(describing: error))]
        if let param = (error as? GatewayError)?.param { json["param"] = JSON(param) }
        return json
    }

    /// Drops what differs from run to run (`created`/`created_at` timestamps).
    static func stable(_ json: JSON) -> JSON {
        switch json.kind {
        case .object:
            return JSON(object: json.members.filter { $0.key != "created" && $0.key != "created_at" }.map { ($0.key, stable($0.value)) })
        case .array:
            return JSON(array: json.elements.map(stable))
        default:
            return json
        }
    }
}
