import NIOCore

/// Between the three model front doors' wire formats — Chat Completions, Messages, Responses.
/// A provider answers only the operations it declares native (`Provider.nativeOperations`); for
/// any other the Kernel translates the request there and the answer back, whole and streamed, so
/// every front door reaches every provider, built-in or custom (docs/ARCHITECTURE.md,
/// "Translation"). Chat Completions is the hub: Messages and Responses each translate to and
/// from it, so any pair is at most two steps apart.
struct Translation: Sendable {
    /// In request order: the first step starts at the client's operation.
    let steps: [TranslationStep]

    /// The operation the provider is sent.
    var target: APIOperation? { steps.last?.to }

    /// How a request for `operation` reaches a provider that speaks `native`: nil when no
    /// translation leads there, empty when none is needed.
    static func route(from operation: APIOperation, to native: Set<APIOperation>) -> Translation? {
        if native.contains(operation) { return Translation(steps: []) }
        let fromClient = TranslationStep.all.filter { $0.from == operation }
        if let direct = fromClient.first(where: { native.contains($0.to) }) { return Translation(steps: [direct]) }
        for first in fromClient {
            if let second = TranslationStep.all.first(where: { $0.from == first.to && $0.to != operation && native.contains($0.to) }) {
                return Translation(steps: [first, second])
            }
        }
        return nil
    }

    /// The client's request in the target's format, with the body each step started from (the
    /// answer's way back needs what was asked: a Response echoes the request's settings).
    func request(_ request: GatewayRequest, upstreamModel: String) throws -> (request: GatewayRequest, asked: [JSON]) {
        var json = request.body.json
        var asked: [JSON] = []
        for step in steps {
            asked.append(json)
            json = try step.request(json, upstreamModel)
        }
        var translated = request
        translated.operation = steps.last?.to ?? request.operation
        translated.dialect = translated.operation == .messages ? .anthropic : .openAI
        translated.body = RequestBody(json: json)
        return (translated, asked)
    }

    /// The provider's answer in the client's format.
    func answer(_ response: GatewayResponse, asked: [JSON], allocator: ByteBufferAllocator) throws -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole(let bytes):
            guard var json = try? JSON.parse(bytes), json.isObject else {
                throw GatewayError(.badGateway, type: "upstream_error", "the provider's answer is not JSON", code: "upstream_invalid")
            }
            for (step, request) in zip(steps, asked).reversed() { json = try step.answer(json, request) }
            response.body = .whole(json.encoded(using: allocator))
            response.headers.replaceOrAdd(name: "content-type", value: "application/json")
        case .events(var events):
            for (step, request) in zip(steps, asked).reversed() {
                let makeTranslator = step.events
                events = events.translating { AnyEventTranslator(makeTranslator(request)) }
            }
            response.body = .events(events)
        }
        return response
    }
}

/// One hop between two wire formats: the request one way, the whole answer and the stream back.
struct TranslationStep: Sendable {
    var from: APIOperation
    var to: APIOperation
    /// The request in `to`'s format, for the target's model.
    var request: @Sendable (_ body: JSON, _ model: String) throws -> JSON
    /// A whole answer in `from`'s format, given the request as the client of this step sent it.
    var answer: @Sendable (_ answer: JSON, _ asked: JSON) throws -> JSON
    /// A translator of the stream, given the request as the client of this step sent it.
    var events: @Sendable (_ asked: JSON) -> any EventTranslator

    static let all: [TranslationStep] = [
        TranslationStep(from: .messages, to: .chatCompletions,
                        request: { try MessagesToChatRequest.translate($0, model: $1) },
                        answer: { answer, _ in ResponseTranslation.message(fromCompletion: answer) },
                        events: { asked in OpenAIToAnthropicStream(asked: asked) }),
        TranslationStep(from: .chatCompletions, to: .messages,
                        request: { try ChatToMessagesRequest.translate($0, model: $1) },
                        answer: { answer, _ in ResponseTranslation.completion(fromMessage: answer) },
                        events: { asked in AnthropicToOpenAIStream(includeUsage: asked["stream_options"]?["include_usage"]?.bool == true) }),
        TranslationStep(from: .responses, to: .chatCompletions,
                        request: { try ResponsesToChatRequest.translate($0, model: $1) },
                        answer: { answer, asked in ResponseObject.response(fromCompletion: answer, asked: asked, base: ResponseObject.uniqueBase()) },
                        events: { asked in ChatToResponsesStream(asked: asked, base: ResponseObject.uniqueBase()) }),
        TranslationStep(from: .chatCompletions, to: .responses,
                        request: { try ChatToResponsesRequest.translate($0, model: $1) },
                        answer: { answer, _ in try ResponseObject.completion(fromResponse: answer) },
                        events: { asked in ResponsesToChatStream(includeUsage: asked["stream_options"]?["include_usage"]?.bool == true) }),
    ]
}

/// Any translator, so that a chain of steps chosen at run time can be applied to a stream.
struct AnyEventTranslator: EventTranslator {
    var base: any EventTranslator

    init(_ base: any EventTranslator) { self.base = base }

    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] { try base.translate(event) }
    mutating func finish() throws -> [SSEEvent] { try base.finish() }
}
