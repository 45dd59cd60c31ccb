import CJansson
import CJSONBudget
import Foundation
import NIOCore

/// Where and why a document is not valid JSON.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let message: String
    /// The document needed more memory than the parse's budget allowed.
    public var exceededBudget = false
    public var description: String { "line \(line), column \(column): \(message)" }
}

/// jansson allocates through the budget check from the first budgeted parse on.
private let budgetInstalled: Void = sluice_json_install_budget()

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

    /// Parses a client's request body: duplicate keys are refused, and jansson may allocate at
    /// most `memoryBudget` bytes for the tree (more fails with `exceededBudget`), so what a
    /// body costs is bounded by more than its size.
    public static func parseRequest(_ buffer: ByteBuffer, memoryBudget: Int) throws(JSONParseError) -> JSON {
        _ = budgetInstalled
        var error = json_error_t()
        sluice_json_budget_begin(max(0, memoryBudget))
        let pointer = buffer.withUnsafeReadableBytes { raw -> UnsafeMutablePointer<json_t>? in
            guard let base = raw.baseAddress else { return json_loadb("", 0, sluice_json_decode_request_flags, &error) }
            return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, sluice_json_decode_request_flags, &error)
        }
        let exceeded = sluice_json_budget_end() != 0
        guard !exceeded else {
            if let pointer { sluice_json_decref(pointer) }
            var failure = JSONParseError(line: Int(error.line), column: Int(error.column), message: "out of memory budget")
            failure.exceededBudget = true
            throw failure
        }
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
