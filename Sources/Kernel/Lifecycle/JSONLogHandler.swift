import Foundation
import Logging
import NIOCore

/// swift-log handler writing one JSON object per line to stdout: time, level, message, label
/// and metadata. Plugins must never put secrets in metadata; the Kernel never logs headers.
/// Lines are made on the caller's thread and written by `LogWriter.standardOutput`'s.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private static let allocator = ByteBufferAllocator()
    /// Made once: making the style costs as much as formatting with it.
    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = Self.line(level: event.level, message: event.message.description, label: label,
                             metadata: event.metadata ?? [:], handlerMetadata: metadata)
        LogWriter.standardOutput.write(line, waitForDelivery: event.level == .critical)
    }

    /// One log line, its newline included. The event's fields win over the handler's (usually
    /// none): no merged dictionary is built.
    static func line(level: Logger.Level, message: String, label: String, metadata fields: Logger.Metadata,
                     handlerMetadata: Logger.Metadata = [:]) -> ByteBuffer {
        var line = JSON.object()
        line["time"] = JSON(Date.now.formatted(timeFormat))
        line["level"] = JSON(level.rawValue)
        line["msg"] = JSON(message)
        line["logger"] = JSON(label)
        for (key, value) in fields { line[key] = json(value) }
        for (key, value) in handlerMetadata where fields[key] == nil { line[key] = json(value) }
        var bytes = line.encoded(using: allocator, sizeHint: 1024)  // one jansson pass
        bytes.writeInteger(UInt8(ascii: "\n"))
        return bytes
    }

    static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let string): JSON(string)
        case .stringConvertible(let convertible):
            switch convertible {  // the concrete types first: a cast to a protocol costs a conformance search
            case let int as Int: JSON(int)
            case let int as UInt: JSON(Int(truncatingIfNeeded: int))
            case let int as any BinaryInteger: JSON(Int(truncatingIfNeeded: int))
            case let double as Double: JSON(double)
            case let bool as Bool: JSON(bool)
            default: JSON(convertible.description)
            }
        case .array(let values): JSON(array: values.map(json))
        case .dictionary(let values): JSON(object: values.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        }
    }
}
