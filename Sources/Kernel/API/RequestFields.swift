/// What the front door reads of every request body before any plugin sees it, in one walk over
/// the body's top-level members: the `model` and `stream` the pipeline is told, the members the
/// operation requires, and the numbers `RequestNumbers` bounds. A body that lacks one, or has one
/// of the wrong kind, is refused with a 400 naming it (the shape's refusals before the numbers').
/// Full validation (ranges, roles, limits) is the `validation` plugin's job.
struct RequestFields {
    let model: String
    let stream: Bool

    init(_ body: RequestBody, operation: APIOperation, dialect: APIDialect) throws {
        var model, stream, messages, input, previousResponseID, maxTokens: JSONView?
        var numbers: GatewayError?
        body.view.forEachMember { key, value in
            if ByteWord.equal(key, "model") {
                model = value()
            } else if ByteWord.equal(key, "messages") {
                messages = value()
            } else if ByteWord.equal(key, "stream") {
                stream = value()
            } else if ByteWord.equal(key, "input") {
                input = value()
            } else if ByteWord.equal(key, "previous_response_id") {
                previousResponseID = value()
            } else {
                if ByteWord.equal(key, "max_tokens") { maxTokens = value() }
                if numbers == nil { numbers = RequestNumbers.refusal(of: key, value, dialect: dialect) }
            }
        }

        guard let name = model?.string, !name.isEmpty else {
            throw GatewayError.invalidRequest(model == nil ? "you must provide a model parameter" : "model must be a non-empty string",
                                              param: "model")
        }
        if let stream, !stream.isNull, stream.bool == nil {
            throw GatewayError.invalidRequest("stream must be true or false", param: "stream")
        }
        switch operation {
        case .chatCompletions, .messages:
            guard let messages else {
                throw GatewayError.invalidRequest("missing required parameter: messages", param: "messages")
            }
            guard messages.kind == .array, !messages.isEmpty else {
                throw GatewayError.invalidRequest("messages must be a non-empty array", param: "messages")
            }
            if operation == .messages, maxTokens?.int == nil {
                throw GatewayError.invalidRequest("max_tokens: a positive integer is required", param: "max_tokens")
            }
        case .embeddings, .moderations:
            guard let input, !input.isNull else {
                throw GatewayError.invalidRequest("missing required parameter: input", param: "input")
            }
        case .responses:
            if let input, !input.isNull {
                guard input.kind == .string || input.kind == .array else {
                    throw GatewayError.invalidRequest("input must be a string or an array of input items", param: "input")
                }
            } else if previousResponseID?.string == nil {
                throw GatewayError.invalidRequest("missing required parameter: input", param: "input")
            }
        case .listModels, .storedResponse, .deleteStoredResponse, .storedResponseInputItems, .other, .mcp:
            break
        }
        if let numbers { throw numbers }
        self.model = name
        self.stream = stream?.bool ?? false
    }
}
