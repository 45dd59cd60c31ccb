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
    /// none), and both over the four the handler writes first: no merged dictionary is built.
    static func line(level: Logger.Level, message: String, label: String, metadata fields: Logger.Metadata,
                     handlerMetadata: Logger.Metadata = [:]) -> ByteBuffer {
        var line = LogLine(capacity: 512)
        func given(_ key: String) -> Logger.Metadata.Value? {
            fields[key] ?? (handlerMetadata.isEmpty ? nil : handlerMetadata[key])
        }
        line.key("time")
        if let time = given("time") { line.write(time) } else { line.writeTimeNow() }
        line.member("level", given("level") ?? .string(level.rawValue))
        line.member("msg", given("msg") ?? .string(message))
        line.member("logger", given("logger") ?? .string(label))
        for (key, value) in fields where !Self.isFirstKey(key) { line.member(key, value) }
        for (key, value) in handlerMetadata where fields[key] == nil && !Self.isFirstKey(key) { line.member(key, value) }
        return line.finish(allocator: allocator)
    }

    /// By length first: most keys are longer, and a comparison of strings that differ is a call.
    private static func isFirstKey(_ key: String) -> Bool {
        switch key.utf8.count {
        case 3: key == "msg"
        case 4: key == "time"
        case 5: key == "level"
        case 6: key == "logger"
        default: false
        }
    }
}
