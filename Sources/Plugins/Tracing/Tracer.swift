/// Starts and ends spans: ids from the `TraceIDGenerator`, the decision of the `TraceSampler`,
/// and ended spans to the `SpanBuffer`, which the `SpanExporter` empties. What a request pays
/// for its span is two clock reads and an id at the start, and one append under one lock at the
/// end; everything else happens in the exporter, off the event loops (docs/ARCHITECTURE.md,
/// "Threads and tasks").
final class Tracer: Sendable {
    let ids: TraceIDGenerator
    let sampler: TraceSampler
    let buffer: SpanBuffer

    init(sampler: TraceSampler, buffer: SpanBuffer, ids: TraceIDGenerator = TraceIDGenerator()) {
        self.sampler = sampler
        self.buffer = buffer
        self.ids = ids
    }

    /// A span continuing `parent` (in its trace, with its `tracestate`), or the root of a new
    /// trace when there is none.
    ///
    /// - Parameters:
    ///   - name: built only when the span is sampled.
    ///   - parentIsRemote: whether `parent` came from another process (a client's `traceparent`).
    func startSpan(_ name: @autoclosure () -> String, kind: SpanRecord.Kind, parent: TraceContext?,
                   parentIsRemote: Bool) -> OpenSpan {
        let traceID = parent?.traceID ?? ids.traceID()
        let sampled = sampler.isSampled(traceID: traceID, parent: parent)
        let context = TraceContext(traceID: traceID, spanID: ids.spanID(), flags: sampled ? TraceContext.sampledFlag : 0,
                                   traceState: parent?.traceState)
        return OpenSpan(context: context, parentSpanID: parent?.spanID ?? SpanID(value: 0), parentIsRemote: parent != nil && parentIsRemote,
                        kind: kind, name: sampled ? name() : "", start: sampled ? SpanClock.now() : SpanClock.Instant(wall: 0, monotonic: 0))
    }

    /// Ends `span` now with its attributes (set all at once, at the end: a span holds nothing
    /// while it is open) and, for a failure, an error status. A span not sampled is not recorded.
    func end(_ span: OpenSpan, attributes: [SpanAttribute], status: SpanRecord.Status?) {
        guard span.isRecording else { return }
        buffer.record(SpanRecord(context: span.context, parentSpanID: span.parentSpanID, parentIsRemote: span.parentIsRemote,
                                 name: span.name, kind: span.kind, startNanoseconds: span.start.wall,
                                 endNanoseconds: SpanClock.wallNanoseconds(since: span.start), attributes: attributes, status: status))
    }
}
