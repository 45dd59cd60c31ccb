/// OpenTelemetry's `ParentBased(root: TraceIdRatioBased(ratio))` sampler
/// (https://opentelemetry.io/docs/specs/otel/trace/sdk/#sampler): a span with a parent follows
/// the parent's `sampled` flag; a new trace is sampled when its id falls in the first `ratio` of
/// id space, so every span of one trace (and every replica seeing it) decides alike.
struct TraceSampler: Sendable {
    /// Trace ids whose low 8 bytes are below this are sampled; `nil` samples every trace
    /// (a bound cannot say "all of 2^64").
    private let bound: UInt64?

    /// - Parameter ratio: the share of new traces sampled, 0 to 1 (checked by the settings).
    init(ratio: Double) {
        if ratio >= 1 {
            bound = nil
        } else if ratio <= 0 || ratio.isNaN {
            bound = 0
        } else {
            // ratio < 1, so the product is below 2^64 (and exact for the ratios people write).
            bound = UInt64(ratio * 18_446_744_073_709_551_616.0)
        }
    }

    /// Whether a span of trace `traceID` is recorded, given its parent's context (`nil` for a
    /// new trace).
    func isSampled(traceID: TraceID, parent: TraceContext?) -> Bool {
        if let parent { return parent.isSampled }
        guard let bound else { return true }
        // The low bytes: W3C Trace Context level 2 makes the rightmost 7 bytes the random part.
        return traceID.low < bound
    }
}
