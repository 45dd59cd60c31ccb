/// What a reader of a JSON value asks of it, whether the value is a jansson tree (`JSON`) or
/// checked bytes (`JSONView`): code that only reads, such as a provider's token counts, is
/// written once for both.
public protocol JSONValue {
    subscript(key: String) -> Self? { get }
    var int: Int? { get }
    var double: Double? { get }
    var isObject: Bool { get }
}

extension JSON: JSONValue {}
extension JSONView: JSONValue {}
