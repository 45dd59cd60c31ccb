/// Who the exported spans come from: OTLP's `Resource` (just `service.name`, the attribute
/// every backend groups traces by) and `InstrumentationScope` (the tracing plugin itself).
struct OTLPResource: Sendable, Equatable {
    var serviceName: String
    var scopeName = "sluice.tracing"

    var attributes: [SpanAttribute] { [SpanAttribute("service.name", serviceName)] }
}
