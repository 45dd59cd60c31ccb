extension Duration {
    /// The duration in seconds, for metrics and arithmetic with rates.
    public var inSeconds: Double {
        let (seconds, attoseconds) = components  // worked out from 128 bits on each read: read once
        return Double(seconds) + Double(attoseconds) / 1e18
    }
    /// The duration in whole milliseconds (for APIs that take them).
    public var inMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
