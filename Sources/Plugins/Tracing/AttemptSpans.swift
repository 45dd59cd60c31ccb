import Kernel

/// Client spans for a request's upstream attempts, children of its server span: the router
/// opens one per attempt, sends its `traceparent` (and the client's `tracestate`) to the
/// provider, and ends it when the attempt's answer ends (docs/ARCHITECTURE.md, "A request's
/// path"). An attempt of a trace not sampled still gets a context to pass on, with the
/// `sampled` flag off, and records nothing.
struct AttemptSpans: AttemptTracer {
    let tracer: Tracer
    /// The server span's context.
    let parent: TraceContext
    let operation: String

    func startAttempt(provider: String, upstreamModel: String, attempt: Int) -> AttemptSpan {
        let operation = operation
        let span = tracer.startSpan("\(operation) \(upstreamModel)", kind: .client, parent: parent, parentIsRemote: false)
        guard span.isRecording else { return AttemptSpan(headers: span.context.headers) { _, _ in } }
        let tracer = tracer
        return AttemptSpan(headers: span.context.headers) { error, usage in
            // All at the end, as for the server span.
            var attributes: [SpanAttribute] = []
            attributes.reserveCapacity(7)
            attributes.append(SpanAttribute("gen_ai.operation.name", operation))
            attributes.append(SpanAttribute("gen_ai.provider.name", provider))
            attributes.append(SpanAttribute("gen_ai.request.model", upstreamModel))
            attributes.append(SpanAttribute("sluice.attempt", attempt))
            if let usage {
                attributes.append(SpanAttribute("gen_ai.usage.input_tokens", usage.inputTokens))
                attributes.append(SpanAttribute("gen_ai.usage.output_tokens", usage.outputTokens))
            }
            if let error { attributes.append(SpanAttribute("error.type", error.code ?? error.type)) }
            tracer.end(span, attributes: attributes, status: error.map { SpanRecord.Status(message: $0.message) })
        }
    }
}
