import Logging

/// A log line's fields, which write themselves in their order into whatever the process logs to.
/// For a line written for every request (the access log's): the Kernel's JSON handler takes them
/// straight into its line, where swift-log's metadata dictionary would hash, copy and box each
/// one first. Other handlers get them as that dictionary.
public protocol LogFields {
    func write(to sink: inout some LogFieldSink)
}

/// Where `LogFields` write: a JSON line, or a metadata dictionary.
public protocol LogFieldSink {
    mutating func add(_ key: String, _ value: String)
    mutating func add(_ key: String, _ value: Int)
    mutating func add(_ key: String, _ value: Double)
    mutating func add(_ key: String, _ value: Bool)
    mutating func add(_ key: String, _ value: Logger.Metadata.Value)
}

extension Logger {
    /// Logs `message` with `fields`, as `log(level:_:metadata:)` does with a dictionary. With the
    /// Kernel's JSON handler, `time`, `level`, `msg` and `logger` are the handler's own.
    public func log(level: Logger.Level, _ message: String, fields: some LogFields) {
        guard level >= logLevel else { return }
        if metadataProvider == nil, let json = handler as? JSONLogHandler {
            json.log(level: level, message: message, fields: fields)
        } else {
            var metadata = MetadataFields()
            fields.write(to: &metadata)
            log(level: level, "\(message)", metadata: metadata.metadata)
        }
    }
}

/// Fields gathered into swift-log's metadata dictionary.
struct MetadataFields: LogFieldSink {
    var metadata = Logger.Metadata(minimumCapacity: 24)
    mutating func add(_ key: String, _ value: String) { metadata[key] = .string(value) }
    mutating func add(_ key: String, _ value: Int) { metadata[key] = .stringConvertible(value) }
    mutating func add(_ key: String, _ value: Double) { metadata[key] = .stringConvertible(value) }
    mutating func add(_ key: String, _ value: Bool) { metadata[key] = .stringConvertible(value) }
    mutating func add(_ key: String, _ value: Logger.Metadata.Value) { metadata[key] = value }
}
