import CJansson
import Foundation
import NIOCore

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
        let pointer = bytes.withUnsafeBytes { load($0, &error) }
        return try owning(pointer, error)
    }

    /// Parses a buffer's readable bytes where they are (no copy).
    public static func parse(_ buffer: ByteBuffer) throws(JSONParseError) -> JSON {
        var error = json_error_t()
        let pointer = buffer.withUnsafeReadableBytes { load($0, &error) }
        return try owning(pointer, error)
    }

    public static func parse(_ string: String) throws(JSONParseError) -> JSON {
        try parse(Array(string.utf8))
    }

    private static func load(_ raw: UnsafeRawBufferPointer, _ error: inout json_error_t) -> UnsafeMutablePointer<json_t>? {
        // jansson reads `buflen` bytes and never past them; an empty buffer still needs a valid address.
        guard let base = raw.baseAddress else { return json_loadb("", 0, sluice_json_decode_flags, &error) }
        return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, sluice_json_decode_flags, &error)
    }

    private static func owning(_ pointer: UnsafeMutablePointer<json_t>?, _ error: json_error_t) throws(JSONParseError) -> JSON {
        guard let pointer else {
            let text = withUnsafeBytes(of: error.text) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            throw JSONParseError(line: Int(error.line), column: Int(error.column), message: text)
        }
        return JSON(owning: pointer)
    }
}
