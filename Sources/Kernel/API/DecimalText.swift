/// Integers in decimal, written straight where they go. `String(int)` goes through the standard
/// library's printing of any `BinaryInteger`; the answer's headers, the access line and the metrics'
/// labels spell a few integers on every request.
public enum DecimalText {
    /// How many bytes `value` takes: its digits and its sign.
    static func length(of value: Int) -> Int {
        var length = value < 0 ? 2 : 1
        var rest = value.magnitude
        while rest >= 10 {
            rest /= 10
            length += 1
        }
        return length
    }

    /// Writes `value` into the first `length(of: value)` bytes of `buffer`; returns that length.
    static func write(_ value: Int, into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let length = length(of: value)
        var rest = value.magnitude
        for index in stride(from: length - 1, through: value < 0 ? 1 : 0, by: -1) {
            buffer[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
        if value < 0 { buffer[0] = UInt8(ascii: "-") }
        return length
    }

    /// Appends `value`'s digits to `bytes`.
    static func append(_ value: Int, to bytes: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in  // a sign and nineteen digits at most
            bytes.append(contentsOf: UnsafeMutableBufferPointer(rebasing: buffer[..<write(value, into: buffer)]))
        }
    }
}

extension String {
    /// `value` in decimal, as `String(value)` spells it.
    public init(decimal value: Int) {
        // The exact length: a string of up to 15 bytes is kept inline, with no allocation.
        self.init(unsafeUninitializedCapacity: DecimalText.length(of: value)) { DecimalText.write(value, into: $0) }
    }
}
