/// The parse tree of a `LinearRegex` pattern.
indirect enum RegexNode {
    case bytes(ByteSet)
    case sequence([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?)
    case assertion(LinearRegex.Assertion)
}
