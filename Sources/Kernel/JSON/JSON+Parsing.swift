import CJansson
import Foundation

/// Where and why a document is not valid JSON.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let message: String
    public var description: String { "line \(line), column \(column): \(message)" }
}

extension JSON {
    /// Parses a whole document (any value at the top). Strings may hold `\u0000`; duplicate keys
    /// keep the last value, as most JSON parsers do.
    public static func parse<Bytes: ContiguousBytes>(_ bytes: Bytes) throws(JSONParseError) -> JSON {
        var error = json_error_t()
        let pointer = bytes.withUnsafeBytes { raw -> UnsafeMutablePointer<json_t>? in
            // jansson reads `buflen` bytes and never past them; an empty buffer still needs a valid address.
            guard let base = raw.baseAddress else { return json_loadb("", 0, sluice_json_decode_flags, &error) }
            return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, sluice_json_decode_flags, &error)
        }
        guard let pointer else {
            let text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            throw JSONParseError(line: Int(error.line), column: Int(error.column), message: text)
        }
        return JSON(owning: pointer)
    }

    public static func parse(_ string: String) throws(JSONParseError) -> JSON {
        try parse(Array(string.utf8))
    }
}
