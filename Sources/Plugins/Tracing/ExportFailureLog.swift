import Logging

/// The exporter's warnings about a collector it cannot reach, rate-limited: the first failure
/// at once, then at most one line a minute with what was lost meanwhile, and one line when
/// exports succeed again. A collector that is down for an hour writes some sixty lines, not one
/// per batch. Owned by the exporter's loop alone, so not locked.
struct ExportFailureLog {
    static let interval: Duration = .seconds(60)

    let logger: Logger
    private var lastLogged: ContinuousClock.Instant?
    private var failuresSinceLog = 0
    private var spansLostSinceLog = 0
    private var failing = false

    init(logger: Logger) {
        self.logger = logger
    }

    /// An export failed (`why` names the error, never the endpoint, whose URL may carry
    /// credentials) and its `spans` were dropped.
    mutating func failed(_ why: String, spans: Int, now: ContinuousClock.Instant = .now) {
        failing = true
        failuresSinceLog += 1
        spansLostSinceLog += spans
        if let lastLogged, now - lastLogged < Self.interval { return }
        logger.warning("tracing: cannot export spans to the collector; they are dropped", metadata: [
            "error": .string(why), "failed_exports": .stringConvertible(failuresSinceLog),
            "spans_dropped": .stringConvertible(spansLostSinceLog),
        ])
        lastLogged = now
        failuresSinceLog = 0
        spansLostSinceLog = 0
    }

    /// An export succeeded: after failures, says so (with what was lost since the last line).
    mutating func succeeded() {
        guard failing else { return }
        var metadata: Logger.Metadata = [:]
        if failuresSinceLog > 0 {
            metadata["failed_exports"] = .stringConvertible(failuresSinceLog)
            metadata["spans_dropped"] = .stringConvertible(spansLostSinceLog)
        }
        logger.info("tracing: exporting spans to the collector again", metadata: metadata)
        failing = false
        lastLogged = nil
        failuresSinceLog = 0
        spansLostSinceLog = 0
    }
}
