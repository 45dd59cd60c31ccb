import Foundation
import Logging

/// swift-log handler writing to the systemd journal with structured fields: the message, the
/// priority, and each metadata key as an upper-case field (`request_id` → `REQUEST_ID`), so
/// `journalctl -u sluice REQUEST_ID=…` finds a request. Records are sent by `LogWriter.journal`'s
/// thread, so a stalled journald never stops an event loop.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    /// Whether stdout is connected to the journal (systemd sets `JOURNAL_STREAM=dev:inode`).
    public static var isJournalStream: Bool {
        guard let stream = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        var info = stat()
        guard fstat(STDOUT_FILENO, &info) == 0 else { return false }
        return stream == "\(info.st_dev):\(info.st_ino)"
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=sluice",
            "LOGGER=\(label)",
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            let text = switch value {
            case .string(let string): string
            default: LogLine.text(of: value)
            }
            fields.append("\(Self.fieldName(key))=\(text)")
        }
        LogWriter.journal.write(LogWriter.journalRecord(fields), waitForDelivery: event.level == .critical)
    }

    /// Journal field names: upper-case letters, digits and underscores, not starting with `_`.
    static func fieldName(_ key: String) -> String {
        let name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }).drop { $0 == "_" || $0.isNumber }
        return name.isEmpty ? "FIELD" : String(name)
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}
