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

    /// Writes a line of `fields` (`Logger.log(level:_:fields:)`).
    func log(level: Logger.Level, message: String, fields: some LogFields) {
        let line = Self.line(level: level, message: message, label: label, fields: fields, handlerMetadata: metadata)
        LogWriter.standardOutput.write(line, waitForDelivery: level == .critical)
    }

    /// One log line of `fields`, in their order after the four the handler writes first; the
    /// handler's metadata follows, where no field has its key.
    static func line(level: Logger.Level, message: String, label: String, fields: some LogFields,
                     handlerMetadata: Logger.Metadata = [:]) -> ByteBuffer {
        var sink = LineFields(line: LogLine(capacity: 512), keys: handlerMetadata.isEmpty ? nil : [])
        sink.line.key("time")
        sink.line.writeTimeNow()
        sink.line.member("level", .string(level.rawValue))
        sink.line.member("msg", .string(message))
        sink.line.member("logger", .string(label))
        fields.write(to: &sink)
        for (key, value) in handlerMetadata where sink.keys?.contains(key) == false && !isFirstKey(key) {
            sink.line.member(key, value)
        }
        return sink.line.finish(allocator: allocator)
    }

    /// Fields written straight into a line. Keys are remembered only when the handler has
    /// metadata of its own to add after them.
    private struct LineFields: LogFieldSink {
        var line: LogLine
        var keys: Set<String>?

        private mutating func key(_ key: String) -> Bool {
            guard !JSONLogHandler.isFirstKey(key) else { return false }
            keys?.insert(key)
            line.key(key)
            return true
        }
        mutating func add(_ key: String, _ value: String) { if self.key(key) { line.writeString(value) } }
        mutating func add(_ key: String, _ value: Int) { if self.key(key) { line.writeInteger(value) } }
        mutating func add(_ key: String, _ value: Double) { if self.key(key) { line.writeDouble(value) } }
        mutating func add(_ key: String, _ value: Bool) { if self.key(key) { line.writeBool(value) } }
        mutating func add(_ key: String, _ value: Logger.Metadata.Value) { if self.key(key) { line.write(value) } }
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
