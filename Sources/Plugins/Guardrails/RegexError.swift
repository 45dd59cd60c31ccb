public struct RegexError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
