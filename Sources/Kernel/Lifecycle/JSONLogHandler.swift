import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// swift-log handler writing one JSON object per line to stdout: time, level, message, label
/// and metadata. Plugins must never put secrets in metadata; the Kernel never logs headers.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private static let output = NIOLockedValueBox(())
    private static let allocator = ByteBufferAllocator()

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = JSON.object()
        line["time"] = JSON(Date.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        line["level"] = JSON(event.level.rawValue)
        line["msg"] = JSON(event.message.description)
        line["logger"] = JSON(label)
        // The event's fields win over the handler's (usually none): no merged dictionary is built.
        let fields = event.metadata ?? [:]
        for (key, value) in fields { line[key] = Self.json(value) }
        for (key, value) in metadata where fields[key] == nil { line[key] = Self.json(value) }
        var bytes = line.encoded(using: Self.allocator, sizeHint: 1024)  // one jansson pass
        bytes.writeInteger(UInt8(ascii: "\n"))
        Self.output.withLockedValue { _ in
            bytes.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(STDOUT_FILENO, raw.baseAddress! + offset, raw.count - offset)
                    if written <= 0 { if errno == EINTR { continue } else { break } }
                    offset += written
                }
            }
        }
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
