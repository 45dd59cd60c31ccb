import NIOHTTP1
@testable import Plugins
import Testing

/// `tracing`'s W3C Trace Context (Sources/Plugins/Tracing/TraceContext.swift), its ids
/// (TraceIDGenerator) and its sampling (TraceSampler), against the spec's rules
/// (https://www.w3.org/TR/trace-context/).
@Suite struct TracingContextTests {
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func aValidTraceparentIsReadAndWrittenBackAlike() throws {
        let context = try #require(TraceContext(traceparent: Self.traceparent))
        #expect(context.traceID == TraceID(high: 0x4bf9_2f35_77b3_4da6, low: 0xa3ce_929d_0e0e_4736))
        #expect(context.spanID == SpanID(value: 0x00f0_67aa_0ba9_02b7))
        #expect(context.flags == 1 && context.isSampled)
        #expect(context.traceparent == Self.traceparent)
        #expect(TraceContext.hex(context.traceID) == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(TraceContext.hex(context.spanID) == "00f067aa0ba902b7")

        let unsampled = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"))
        #expect(!unsampled.isSampled)
        #expect(unsampled.traceparent.hasSuffix("-00"))
    }

    @Test func onlyTheSampledFlagIsPassedOn() throws {
        // Flags this version does not define must not be propagated (they may mean something else later).
        let context = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"))
        #expect(context.isSampled)
        #expect(context.traceparent == Self.traceparent)
        let unsampled = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe"))
        #expect(!unsampled.isSampled)
        #expect(unsampled.traceparent.hasSuffix("-00"))
    }

    @Test(arguments: [
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  // no flags
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",  // one flag digit
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // version 00 has exactly 55 characters
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff is invalid
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper-case hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  // not hex
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // separators
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e47-3600f067aa0ba902b7-01",  // dash in the wrong place
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // a later version's fields start with a dash
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{0}",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
    ])
    func malformedTraceparentsAreRefused(_ value: String) {
        #expect(TraceContext(traceparent: value) == nil, "\(value)")
    }

    @Test func aLaterVersionIsReadAsFarAsVersion00Goes() throws {
        let context = try #require(TraceContext(traceparent: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"))
        #expect(context.traceparent == Self.traceparent, "sent on as version 00")
        #expect(TraceContext(traceparent: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") != nil)
    }

    @Test func tracestateIsKeptAsItIsAndPassedOn() throws {
        let context = try #require(TraceContext(headers: ["traceparent": Self.traceparent, "tracestate": "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"]))
        #expect(context.traceState == "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
        let headers = context.headers
        #expect(headers["traceparent"] == [Self.traceparent])
        #expect(headers["tracestate"] == ["congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"])

        // Several fields are one list (RFC 9110 §5.3).
        let split = try #require(TraceContext(headers: HTTPHeaders([("traceparent", Self.traceparent), ("tracestate", "congo=t61rcWkgMzE"),
                                                          ("tracestate", "rojo=00f067aa0ba902b7")])))
        #expect(split.traceState == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")

        // Without a valid traceparent there is no context, and the tracestate goes nowhere.
        #expect(TraceContext(headers: ["tracestate": "congo=t61rcWkgMzE"]) == nil)
        #expect(TraceContext(headers: ["traceparent": "00-nonsense", "tracestate": "congo=t61rcWkgMzE"]) == nil)
        // Without a tracestate none is sent.
        let bare = try #require(TraceContext(headers: ["TraceParent": Self.traceparent]))
        #expect(bare.traceState == nil)
        #expect(bare.headers["tracestate"].isEmpty)
    }

    // MARK: Ids

    @Test func idsFollowSplitMix64() {
        // SplitMix64's published first outputs from seed 0 (Vigna's splitmix64.c).
        let ids = TraceIDGenerator(seed: 0)
        #expect(ids.spanID().value == 0xE220_A839_7B1D_CDAF)
        #expect(ids.spanID().value == 0x6E78_9E6A_A1B9_65F4)
        #expect(ids.spanID().value == 0x06C4_5D18_8009_454F)
        // Same seed, same ids; a trace id takes two outputs.
        let again = TraceIDGenerator(seed: 0)
        #expect(again.traceID() == TraceID(high: 0xE220_A839_7B1D_CDAF, low: 0x6E78_9E6A_A1B9_65F4))
    }

    @Test func idsAreUniqueAcrossThreads() async {
        let ids = TraceIDGenerator()
        let made = await withTaskGroup(of: [UInt64].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<25_000).map { _ in ids.spanID().value } }
            }
            return await group.reduce(into: [UInt64]()) { $0 += $1 }
        }
        #expect(made.count == 100_000)
        #expect(Set(made).count == made.count)
        #expect(!made.contains(0))
        // Spread over the whole range: about half have the top bit set.
        let high = made.filter { $0 >> 63 == 1 }.count
        #expect((45_000...55_000).contains(high), "\(high)")
    }

    // MARK: Sampling

    static let parentSampled = TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    static let parentNotSampled = TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")

    @Test func aParentsDecisionIsFollowed() {
        let trace = TraceID(high: 1, low: 1)
        for ratio in [0.0, 0.5, 1.0] {
            let sampler = TraceSampler(ratio: ratio)
            #expect(sampler.isSampled(traceID: trace, parent: Self.parentSampled), "ratio \(ratio)")
            #expect(!sampler.isSampled(traceID: trace, parent: Self.parentNotSampled), "ratio \(ratio)")
        }
    }

    @Test func newTracesAreSampledByTheirIdsLowBytes() {
        #expect(TraceSampler(ratio: 1).isSampled(traceID: TraceID(high: 0, low: .max), parent: nil))
        #expect(!TraceSampler(ratio: 0).isSampled(traceID: TraceID(high: 0, low: 0), parent: nil))
        let quarter = TraceSampler(ratio: 0.25)
        #expect(quarter.isSampled(traceID: TraceID(high: .max, low: (1 << 62) - 1), parent: nil))
        #expect(!quarter.isSampled(traceID: TraceID(high: 0, low: 1 << 62), parent: nil))
        // The same trace gets the same decision, whoever asks.
        let trace = TraceID(high: 7, low: 0x3000_0000_0000_0000)
        #expect(quarter.isSampled(traceID: trace, parent: nil) == TraceSampler(ratio: 0.25).isSampled(traceID: trace, parent: nil))

        let ids = TraceIDGenerator()
        let sampled = (0..<20_000).filter { _ in quarter.isSampled(traceID: ids.traceID(), parent: nil) }.count
        #expect((4_400...5_600).contains(sampled), "\(sampled) of 20000 at 0.25")
    }

    @Test func aTracerContinuesItsParentOrStartsATrace() throws {
        let buffer = SpanBuffer(capacity: 8, batchSize: 8)
        let tracer = Tracer(sampler: TraceSampler(ratio: 1), buffer: buffer)
        let parent = try #require(TraceContext(headers: ["traceparent": Self.traceparent, "tracestate": "rojo=1"]))

        let server = tracer.startSpan("chat m", kind: .server, parent: parent, parentIsRemote: true)
        #expect(server.context.traceID == parent.traceID && server.context.traceState == "rojo=1")
        #expect(server.context.spanID != parent.spanID && server.context.isSampled)
        #expect(server.parentSpanID == parent.spanID && server.parentIsRemote)
        let client = tracer.startSpan("chat up-m", kind: .client, parent: server.context, parentIsRemote: false)
        #expect(client.parentSpanID == server.context.spanID && !client.parentIsRemote)
        #expect(client.context.headers["tracestate"] == ["rojo=1"])
        tracer.end(client, attributes: [SpanAttribute("sluice.attempt", 1)], status: SpanRecord.Status(message: "boom"))
        tracer.end(server, attributes: [], status: nil)

        let recorded = buffer.take().spans
        #expect(recorded.map(\.name) == ["chat up-m", "chat m"])
        #expect(recorded.allSatisfy { $0.endNanoseconds >= $0.startNanoseconds && $0.startNanoseconds > 1_700_000_000_000_000_000 })
        #expect(recorded[0].status == SpanRecord.Status(message: "boom"))
        #expect(recorded[1].otlpFlags == 0x301, "sampled, remote parent")
        #expect(recorded[0].otlpFlags == 0x101, "sampled, local parent")

        let root = tracer.startSpan("chat m", kind: .server, parent: nil, parentIsRemote: true)
        #expect(root.context.traceID.isValid && root.context.traceID != parent.traceID)
        #expect(!root.parentSpanID.isValid && !root.parentIsRemote && root.context.traceState == nil)
    }

    @Test func aSpanNotSampledPassesItsContextOnAndRecordsNothing() throws {
        let buffer = SpanBuffer(capacity: 8, batchSize: 8)
        let tracer = Tracer(sampler: TraceSampler(ratio: 0), buffer: buffer)
        var named = false
        let span = tracer.startSpan({ named = true; return "chat m" }(), kind: .server, parent: nil, parentIsRemote: true)
        #expect(!span.isRecording && !named, "the name of a span not recorded is never built")
        let sent = try #require(TraceContext(headers: span.context.headers))
        #expect(!sent.isSampled && sent.traceID == span.context.traceID && sent.spanID.isValid)
        tracer.end(span, attributes: [SpanAttribute("a", "b")], status: nil)
        #expect(buffer.count == 0)
    }
}
