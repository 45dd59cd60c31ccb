/// The numbers a request may carry, checked by the front door for every request whatever the
/// pipeline holds (`RequestFields`): plugins and providers compute with them (token estimates,
/// reservations, costs, translations), so a value out of range is refused here with a 400 naming
/// the field, and nothing downstream ever sees a negative, fractional or absurd count.
enum RequestNumbers {
    /// The largest token count a request may name: no model comes near it, and sums of a few
    /// such counts stay far from overflowing.
    static let maxTokens = Int(Int32.max)

    private enum Bounds {
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
    }

    private struct Rule {
        let key: StaticString
        let bounds: Bounds
    }

    private static let shared: [Rule] = [
        Rule(key: "max_tokens", bounds: .integer(1...maxTokens)),
        Rule(key: "max_completion_tokens", bounds: .integer(1...maxTokens)),
        Rule(key: "max_output_tokens", bounds: .integer(1...maxTokens)),
        Rule(key: "n", bounds: .integer(1...128)),
        Rule(key: "top_logprobs", bounds: .integer(0...20)),
        Rule(key: "top_k", bounds: .integer(0...maxTokens)),
        Rule(key: "dimensions", bounds: .integer(1...maxTokens)),
        Rule(key: "seed", bounds: .integer(Int.min...Int.max)),
        Rule(key: "top_p", bounds: .number(0...1)),
        Rule(key: "presence_penalty", bounds: .number(-2...2)),
        Rule(key: "frequency_penalty", bounds: .number(-2...2)),
    ]
    private static let openAI = shared + [Rule(key: "temperature", bounds: .number(0...2))]
    private static let anthropic = shared + [Rule(key: "temperature", bounds: .number(0...1))]

    /// The refusal of a top-level member `key` (its UTF-8) whose value is out of its bounds;
    /// `nil` for a number within them, a `null`, and any member that is not one of these numbers.
    /// `value` is made only for a member that is one of these numbers.
    static func refusal(of key: UnsafeRawBufferPointer, _ value: () -> JSONView, dialect: APIDialect) -> GatewayError? {
        guard let rule = (dialect == .anthropic ? anthropic : openAI).first(where: { ByteWord.equal(key, $0.key) }) else { return nil }
        let value = value()
        guard !value.isNull else { return nil }
        switch rule.bounds {
        case .integer(let range):
            guard let int = value.int, range.contains(int) else { return refusal(rule.key, "an integer", range.lowerBound, range.upperBound) }
        case .number(let range):
            guard let number = value.double, range.contains(number) else {
                return refusal(rule.key, "a number", range.lowerBound.formatted, range.upperBound.formatted)
            }
        }
        return nil
    }

    private static func refusal(_ key: StaticString, _ kind: String, _ low: some CustomStringConvertible,
                                _ high: some CustomStringConvertible) -> GatewayError {
        let bounds = "\(high)" == "\(Int.max)" ? "" : " from \(low) to \(high)"
        return GatewayError.invalidRequest("\(key) must be \(kind)\(bounds)", param: "\(key)", code: "invalid_value")
    }
}
