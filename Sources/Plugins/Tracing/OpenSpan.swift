/// A span that has started and not yet ended: its context (which goes upstream in
/// `traceparent`), its place in the trace, and its start. A value: nothing is shared or locked
/// while it is open; the `Tracer` records it when it ends, if it is sampled.
struct OpenSpan: Sendable {
    let context: TraceContext
    /// The parent's id; invalid (zero) for the root of a trace.
    let parentSpanID: SpanID
    let parentIsRemote: Bool
    let kind: SpanRecord.Kind
    /// Empty for a span that is not recorded: its name is never needed, so never built.
    let name: String
    let start: SpanClock.Instant

    /// Whether the span is sampled, and so recorded at its end; one that is not still has a
    /// context to pass on (with the `sampled` flag off), as the W3C and OpenTelemetry require.
    var isRecording: Bool { context.isSampled }
}
