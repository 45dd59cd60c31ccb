/// The numbers a request may carry, checked by the front door for every request whatever the
/// pipeline holds: plugins and providers compute with them (token estimates, reservations,
/// costs, translations), so a value out of range is refused here with a 400 naming the field,
/// and nothing downstream ever sees a negative, fractional or absurd count.
enum RequestNumbers {
    /// The largest token count a request may name: no model comes near it, and sums of a few
    /// such counts stay far from overflowing.
    static let maxTokens = Int(Int32.max)

    private enum Rule {
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
    }

    private static let shared: [(String, Rule)] = [
        ("max_tokens", .integer(1...maxTokens)),
        ("max_completion_tokens", .integer(1...maxTokens)),
        ("max_output_tokens", .integer(1...maxTokens)),
        ("n", .integer(1...128)),
        ("top_logprobs", .integer(0...20)),
        ("top_k", .integer(0...maxTokens)),
        ("dimensions", .integer(1...maxTokens)),
        ("seed", .integer(Int.min...Int.max)),
        ("top_p", .number(0...1)),
        ("presence_penalty", .number(-2...2)),
        ("frequency_penalty", .number(-2...2)),
    ]
    private static let openAI = shared + [("temperature", .number(0...2))]
    private static let anthropic = shared + [("temperature", .number(0...1))]

    static func check(_ body: JSON, dialect: APIDialect) throws {
        try check(RequestBody(json: body), dialect: dialect)
    }

    private static let openAIKeys = openAI.map(\.0)
    private static let anthropicKeys = anthropic.map(\.0)

    static func check(_ body: RequestBody, dialect: APIDialect) throws {
        let rules = dialect == .anthropic ? anthropic : openAI
        let values = body.view.members(dialect == .anthropic ? anthropicKeys : openAIKeys)
        for ((key, rule), value) in zip(rules, values) {
            guard let value, !value.isNull else { continue }
            switch rule {
            case .integer(let range):
                guard let int = value.int, range.contains(int) else { throw refusal(key, "an integer", range.lowerBound, range.upperBound) }
            case .number(let range):
                guard let number = value.double, range.contains(number) else {
                    throw refusal(key, "a number", range.lowerBound.formatted, range.upperBound.formatted)
                }
            }
        }
    }

    private static func refusal(_ key: String, _ kind: String, _ low: some CustomStringConvertible,
                                _ high: some CustomStringConvertible) -> GatewayError {
        let bounds = "\(high)" == "\(Int.max)" ? "" : " from \(low) to \(high)"
        return GatewayError.invalidRequest("\(key) must be \(kind)\(bounds)", param: key, code: "invalid_value")
    }
}
