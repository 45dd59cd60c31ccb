import Foundation
import Kernel

/// OpenAI embeddings requests as InvokeModel calls to Bedrock's embedding models, and their
/// answers back in OpenAI's shape.
enum BedrockEmbeddings {
    /// The most inputs one request may ask for, as OpenAI allows.
    static let maxInputs = 2048
    /// The most texts Cohere's models take in one call.
    static let cohereBatch = 96

    enum Family: Equatable {
        /// `amazon.titan-embed-*`: `{inputText, dimensions?}` → `{embedding, inputTextTokenCount}`, one input a call.
        case titan
        /// `cohere.embed-*`: `{texts, input_type}` → `{embeddings}`.
        case cohere

        /// By the model id, which may also be an inference profile (`us.cohere.embed-…`) or an ARN.
        init?(model: String) {
            let name = model.split(separator: "/").last.map(String.init) ?? model
            if name.contains("amazon.titan-embed") { self = .titan } else if name.contains("cohere.embed") { self = .cohere } else { return nil }
        }

        /// The bodies of the calls that embed the request's inputs, in input order.
        func requests(for body: JSON) throws -> [JSON] {
            let inputs = try BedrockEmbeddings.inputs(body["input"])
            let dimensions = body["dimensions"].flatMap { $0.isNull ? nil : $0 }
            switch self {
            case .titan:
                return inputs.map { text in
                    var call: JSON = ["inputText": JSON(text)]
                    if let dimensions { call["dimensions"] = dimensions }
                    return call
                }
            case .cohere:
                if dimensions != nil {
                    throw GatewayError.invalidRequest("Cohere's embedding models on Amazon Bedrock have fixed dimensions", param: "dimensions")
                }
                return stride(from: 0, to: inputs.count, by: BedrockEmbeddings.cohereBatch).map { start in
                    let batch = inputs[start..<min(start + BedrockEmbeddings.cohereBatch, inputs.count)]
                    return ["texts": JSON(array: batch.map { JSON($0) }), "input_type": "search_document"]
                }
            }
        }

        /// The vectors of one call's answer, in order.
        func vectors(in answer: JSON) throws -> [JSON] {
            switch self {
            case .titan:
                guard let vector = answer["embedding"], vector.isArray else { throw BedrockWire.notJSON }
                return [vector]
            case .cohere:
                // `embeddings` is the list of vectors, or (when types were asked for) an object of lists.
                let embeddings = answer["embeddings"].flatMap { $0.isObject ? $0["float"] : $0 }
                guard let embeddings, embeddings.isArray else { throw BedrockWire.notJSON }
                return embeddings.elements
            }
        }
    }

    /// `input` as texts: a string or an array of strings. Token arrays cannot be sent: Bedrock's
    /// models take text, and the ids of another model's tokenizer mean nothing to them.
    static func inputs(_ input: JSON?) throws -> [String] {
        if let text = input?.string { return [text] }
        let elements = input?.elements ?? []
        guard !elements.isEmpty, input?.isArray == true else {
            throw GatewayError.invalidRequest("input must be a string or a non-empty array of strings", param: "input")
        }
        guard elements.count <= maxInputs else {
            throw GatewayError.invalidRequest("at most \(maxInputs) inputs per request", param: "input")
        }
        return try elements.enumerated().map { index, element in
            guard let text = element.string else {
                throw GatewayError.invalidRequest("Amazon Bedrock embeds text: token arrays are not supported", param: "input[\(index)]")
            }
            return text
        }
    }

    /// OpenAI's embeddings list; `base64` packs each vector as little-endian float32, as OpenAI does.
    static func response(_ vectors: [JSON], model: String, base64: Bool, usage: Usage) -> JSON {
        let data = vectors.enumerated().map { index, vector -> JSON in
            ["object": "embedding", "index": JSON(index), "embedding": base64 ? JSON(packed(vector)) : vector]
        }
        return ["object": "list", "data": JSON(array: data), "model": JSON(model),
                "usage": ["prompt_tokens": JSON(usage.inputTokens), "total_tokens": JSON(usage.inputTokens)]]
    }

    static func packed(_ vector: JSON) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for element in vector.elements {
            let bits = Float(element.double ?? 0).bitPattern
            bytes += [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
        }
        return Data(bytes).base64EncodedString()
    }
}
