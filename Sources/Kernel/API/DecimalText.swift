/// Integers in decimal, written straight where they go. `String(int)` goes through the standard
/// library's printing of any `BinaryInteger`; the answer's headers, the access line, the metrics'
/// labels and the trace exporter spell a few integers on every request.
public enum DecimalText {
    /// How many bytes `value` takes: its digits and its sign.
    static func length(of value: Int) -> Int {
        (value < 0 ? 1 : 0) + digits(of: value.magnitude)
    }

    /// Writes `value` into the first `length(of: value)` bytes of `buffer`; returns that length.
    static func write(_ value: Int, into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        write(UInt64(value.magnitude), negative: value < 0, into: buffer)
    }

    /// Appends `value`'s digits to `bytes`.
    public static func append(_ value: Int, to bytes: inout [UInt8]) {
        append(UInt64(value.magnitude), negative: value < 0, to: &bytes)
    }

    public static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        append(value, negative: false, to: &bytes)
    }

    private static func append(_ magnitude: UInt64, negative: Bool, to bytes: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { buffer in  // a sign and twenty digits at most
            bytes.append(contentsOf: UnsafeMutableBufferPointer(rebasing: buffer[..<write(magnitude, negative: negative, into: buffer)]))
        }
    }

    private static func digits(of magnitude: some UnsignedInteger) -> Int {
        var count = 1
        var rest = magnitude
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }

    private static func write(_ magnitude: UInt64, negative: Bool, into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let first = negative ? 1 : 0
        let length = first + digits(of: magnitude)
        var rest = magnitude
        for index in stride(from: length - 1, through: first, by: -1) {
            buffer[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
        if negative { buffer[0] = UInt8(ascii: "-") }
        return length
    }
}

extension String {
    /// `value` in decimal, as `String(value)` spells it.
    public init(decimal value: Int) {
        // The exact length: a string of up to 15 bytes is kept inline, with no allocation.
        self.init(unsafeUninitializedCapacity: DecimalText.length(of: value)) { DecimalText.write(value, into: $0) }
    }
}
