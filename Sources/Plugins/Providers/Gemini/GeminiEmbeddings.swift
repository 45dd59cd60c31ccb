import Foundation
import Kernel

/// An OpenAI embeddings request and answer, in the two forms Google's APIs take: Google AI
/// Studio's `batchEmbedContents` and Vertex AI's `predict`.
enum GeminiEmbeddings {
    enum Style: Sendable {
        /// `models/{model}:batchEmbedContents`: `requests[].content` → `embeddings[].values`; no usage reported.
        case batchEmbedContents
        /// Vertex AI's `:predict`: `instances[].content` → `predictions[].embeddings.values`, with token counts.
        case predict
    }

    /// The texts to embed; Google's models embed text only, not token arrays.
    static func inputs(_ request: JSON) throws -> [String] {
        guard let input = request["input"] else { throw GatewayError.invalidRequest("input is required", param: "input") }
        if let text = input.string { return [text] }
        let texts = input.elements.compactMap(\.string)
        guard input.isArray, input.count > 0, texts.count == input.count else {
            throw GatewayError.invalidRequest("this model's provider (Google) embeds text only: give a string or an array of strings",
                                              param: "input")
        }
        return texts
    }

    static func request(_ openAI: JSON, model: String, style: Style) throws -> JSON {
        let texts = try inputs(openAI)
        let dimensions = openAI["dimensions"]?.int
        switch style {
        case .batchEmbedContents:
            return ["requests": JSON(array: texts.map { text in
                var one: JSON = ["model": JSON("models/" + model), "content": ["parts": [["text": JSON(text)]]]]
                if let dimensions { one["outputDimensionality"] = JSON(dimensions) }
                return one
            })]
        case .predict:
            var body: JSON = ["instances": JSON(array: texts.map { ["content": JSON($0)] })]
            if let dimensions { body["parameters"] = ["outputDimensionality": JSON(dimensions)] }
            return body
        }
    }

    /// The answer in OpenAI's shape, and its usage; vectors as base64 of little-endian float32
    /// when the client asked (`encoding_format: "base64"`, as the OpenAI SDKs do by default).
    static func answer(_ answer: JSON, asked: JSON, model: String, style: Style) throws -> (JSON, Usage) {
        let vectors: [JSON]
        var tokens = 0
        switch style {
        case .batchEmbedContents:
            vectors = (answer["embeddings"]?.elements ?? []).map { $0["values"] ?? .array() }
        case .predict:
            let predictions = answer["predictions"]?.elements ?? []
            vectors = predictions.map { $0["embeddings"]?["values"] ?? .array() }
            tokens = predictions.reduce(0) { $0 + ($1["embeddings"]?["statistics"]?["token_count"]?.tokenCount ?? 0) }
        }
        guard !vectors.isEmpty, vectors.allSatisfy(\.isArray) else {
            throw GatewayError(.badGateway, type: "upstream_error", "the provider's answer holds no embeddings", code: "upstream_invalid")
        }
        let base64 = asked["encoding_format"]?.string == "base64"
        let data = vectors.enumerated().map { index, values -> JSON in
            ["object": "embedding", "index": JSON(index), "embedding": base64 ? JSON(encoded(values)) : values]
        }
        let usage = Usage(inputTokens: tokens, outputTokens: 0)
        let json: JSON = ["object": "list", "data": JSON(array: data), "model": JSON(model),
                          "usage": ["prompt_tokens": JSON(tokens), "total_tokens": JSON(tokens)]]
        return (json, usage)
    }

    static func encoded(_ values: JSON) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for value in values.elements {
            let bits = Float(value.double ?? 0).bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return Data(bytes).base64EncodedString()
    }
}
