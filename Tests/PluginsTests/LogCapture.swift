import Foundation
import Logging
import NIOConcurrencyHelpers

/// Log lines as a test sees them: the message, the label of the logger that wrote it, and its
/// metadata (the logger's and the line's together).
struct LogLine: Sendable {
    var label: String
    var level: Logger.Level
    var message: String
    var metadata: Logger.Metadata

    subscript(field: String) -> String? { metadata[field].map { "\($0)" } }
}

/// The lines whose `request_id` starts with one prefix: a test sends `x-request-id`s made by
/// `requestID(_:)`, and reads back the lines of its own requests, whatever other tests log at
/// the same time.
final class LogSink: Sendable {
    let prefix = "log-\(UUID().uuidString.prefix(8))-"
    private let lines = NIOLockedValueBox<[LogLine]>([])

    fileprivate func add(_ line: LogLine) { lines.withLockedValue { $0.append(line) } }

    /// A request id this sink collects the lines of.
    func requestID(_ suffix: String) -> String { prefix + suffix }

    /// The lines logged for `requestID(suffix)`, waiting briefly for lines written when a stream
    /// ends (after the test has read its last event).
    func lines(for suffix: String, label: String? = nil, atLeast count: Int = 1) async -> [LogLine] {
        for _ in 0..<200 {
            let found = lines.withLockedValue { lines in
                lines.filter { $0["request_id"] == requestID(suffix) && (label == nil || $0.label == label) }
            }
            if found.count >= count { return found }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return lines.withLockedValue { lines in lines.filter { $0["request_id"] == requestID(suffix) && (label == nil || $0.label == label) } }
    }
}

/// Plugins that log through loggers of their own (`access-log`'s `sluice.access`) write through
/// the process's logging system: the test process bootstraps it once with a handler that gives
/// each line to the sink whose prefix its `request_id` has, and prints the others as swift-log's
/// default would.
enum LogCapture {
    private static let sinks = NIOLockedValueBox<[String: LogSink]>([:])

    private static let bootstrapped: Void = {
        LoggingSystem.bootstrap { label in RoutingLogHandler(label: label, fallback: StreamLogHandler.standardError(label: label)) }
    }()

    /// A sink of its own for a test; the logging system is set up on first use.
    static func sink() -> LogSink {
        _ = bootstrapped
        let sink = LogSink()
        sinks.withLockedValue { $0[sink.prefix] = sink }
        return sink
    }

    fileprivate static func sink(forRequestID id: String) -> LogSink? {
        guard id.hasPrefix("log-"), id.count > 13 else { return nil }
        let prefix = String(id.prefix(13))
        return sinks.withLockedValue { $0[prefix] }
    }
}

private struct RoutingLogHandler: LogHandler {
    let label: String
    var fallback: StreamLogHandler
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    init(label: String, fallback: StreamLogHandler) {
        self.label = label
        self.fallback = fallback
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if case .string(let id)? = merged["request_id"], let sink = LogCapture.sink(forRequestID: id) {
            sink.add(LogLine(label: label, level: event.level, message: event.message.description, metadata: merged))
        } else {
            var fallback = fallback
            fallback.metadata = metadata
            fallback.logLevel = logLevel
            fallback.log(event: event)
        }
    }
}
