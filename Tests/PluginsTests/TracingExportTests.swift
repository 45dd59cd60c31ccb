import Foundation
import Kernel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
@testable import Plugins
import Testing

/// `tracing`'s span buffer (bounded, dropping and counting when full, waking the exporter for a
/// full batch) and exporter (Sources/Plugins/Tracing/SpanBuffer.swift, SpanExporter.swift,
/// ExportFailureLog.swift), against a collector on 127.0.0.1 (`LocalHTTPServer`).
@Suite struct TracingExportTests {
    static func span(_ index: Int) -> SpanRecord {
        SpanRecord(context: TraceContext(traceID: TraceID(high: 1, low: UInt64(index) + 1), spanID: SpanID(value: UInt64(index) + 1), flags: 1),
                   parentSpanID: SpanID(value: 0), parentIsRemote: false, name: "span \(index)", kind: .server,
                   startNanoseconds: 1, endNanoseconds: 2, attributes: [SpanAttribute("index", index)], status: nil)
    }

    /// Log lines of one logger, kept for the test to read.
    final class Lines: LogHandler, @unchecked Sendable {
        let lines = NIOLockedValueBox<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            lines.withLockedValue { $0.append((event.level, event.message.description, event.metadata ?? [:])) }
        }

        var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lines.withLockedValue { $0 } }

        var logger: Logger { Logger(label: "tracing-test") { _ in self } }
    }

    // MARK: The buffer

    @Test func aFullBufferDropsAndCounts() {
        let buffer = SpanBuffer(capacity: 3, batchSize: 2)
        for index in 0..<5 { buffer.record(Self.span(index)) }
        let batch = buffer.take()
        #expect(batch.spans.map(\.name) == ["span 0", "span 1", "span 2"], "the first spans are kept, the later dropped")
        #expect(batch.dropped == 2)
        let next = buffer.take()
        #expect(next.spans.isEmpty && next.dropped == 0, "the count starts again after each take")
        buffer.record(Self.span(9))
        #expect(buffer.take().spans.map(\.name) == ["span 9"])
    }

    @Test func aFullBatchWakesTheExporterBeforeItsInterval() async {
        let buffer = SpanBuffer(capacity: 100, batchSize: 10)
        let started = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await buffer.waitForBatch(orFor: .seconds(60)) }
            try? await Task.sleep(for: .milliseconds(50))
            for index in 0..<10 { buffer.record(Self.span(index)) }
            await group.waitForAll()
        }
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(buffer.count == 10)
    }

    @Test func theWaitEndsAfterItsIntervalOnCloseAndOnCancel() async {
        let buffer = SpanBuffer(capacity: 100, batchSize: 10)
        var started = ContinuousClock.now
        await buffer.waitForBatch(orFor: .milliseconds(100))
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(100) && waited < .seconds(30))

        started = ContinuousClock.now
        let waiting = Task { await buffer.waitForBatch(orFor: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await waiting.value
        #expect(ContinuousClock.now - started < .seconds(30))

        started = ContinuousClock.now
        let closing = Task { await buffer.waitForBatch(orFor: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        buffer.close()
        await closing.value
        await buffer.waitForBatch(orFor: .seconds(60))  // once closed, at once
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    // MARK: The exporter

    static func withCollector(_ answer: @escaping LocalHTTPServer.Answer = { _ in .json("{}") },
                              _ body: (LocalHTTPServer) async throws -> Void) async throws {
        let collector = try await LocalHTTPServer.start(answer)
        do { try await body(collector) } catch {
            await collector.shutdown()
            throw error
        }
        await collector.shutdown()
    }

    static func exporter(_ collector: String, encoding: SpanExporter.Encoding = .protobuf, buffer: SpanBuffer,
                         logger: Logger, interval: Duration = .seconds(60)) -> SpanExporter {
        SpanExporter(buffer: buffer, url: collector + "/v1/traces", encoding: encoding, resource: OTLPResource(serviceName: "exporter-test"),
                     interval: interval, upstream: UpstreamClient(environment: [:]), allocator: ByteBufferAllocator(), logger: logger)
    }

    @Test func spansArePostedInBatchesOfAtMostBatchSize() async throws {
        try await Self.withCollector({ _ in LocalHTTPServer.Reply(headers: ["content-type": "application/x-protobuf"], body: "") }) { collector async throws in
            let lines = Lines()
            let buffer = SpanBuffer(capacity: 2000, batchSize: 500)
            for index in 0..<1_200 { buffer.record(Self.span(index)) }
            var failures = ExportFailureLog(logger: lines.logger)
            await Self.exporter(collector.url, buffer: buffer, logger: lines.logger).exportHeld(&failures)

            let requests = collector.requests
            #expect(requests.map(\.uri) == ["/v1/traces", "/v1/traces", "/v1/traces"])
            #expect(requests.allSatisfy { $0.method == .POST && $0.headers.first(name: "content-type") == "application/x-protobuf" })
            let counts = try requests.map { request in
                try TracingEncodingTests.Message(request.body).message(1).message(2).messages(2).count
            }
            #expect(counts == [500, 500, 200])
            let names = try requests.flatMap { request in
                try TracingEncodingTests.Message(request.body).message(1).message(2).messages(2).compactMap { $0.string(5) }
            }
            #expect(names == (0..<1_200).map { "span \($0)" })
            #expect(lines.all.isEmpty, "\(lines.all)")
        }
    }

    @Test func jsonGoesAsJSON() async throws {
        try await Self.withCollector { collector async throws in
            let lines = Lines()
            let buffer = SpanBuffer()
            buffer.record(Self.span(1))
            var failures = ExportFailureLog(logger: lines.logger)
            await Self.exporter(collector.url, encoding: .json, buffer: buffer, logger: lines.logger).exportHeld(&failures)
            let request = try #require(collector.requests.first)
            #expect(request.headers.first(name: "content-type") == "application/json")
            let json = try JSON.parse(request.body)
            #expect(json["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?[0]?["name"]?.string == "span 1")
        }
    }

    @Test func droppedSpansAreReportedWithTheNextExport() async throws {
        try await Self.withCollector { collector async throws in
            let lines = Lines()
            let buffer = SpanBuffer(capacity: 4, batchSize: 4)
            for index in 0..<10 { buffer.record(Self.span(index)) }
            var failures = ExportFailureLog(logger: lines.logger)
            let exporter = Self.exporter(collector.url, buffer: buffer, logger: lines.logger)
            await exporter.exportHeld(&failures)
            // Only the drop report counts: under a loaded test run an export may also time out and say so.
            let warnings = lines.all.filter { $0.level == .warning && $0.metadata["spans_dropped"] != nil }
            #expect(warnings.count == 1)
            #expect(warnings.first?.metadata["spans_dropped"]?.description == "6")
            await exporter.exportHeld(&failures)
            #expect(lines.all.filter { $0.level == .warning && $0.metadata["spans_dropped"] != nil }.count == 1,
                    "nothing dropped since: no new line")
        }
    }

    @Test func aFailingCollectorIsLoggedRateLimitedAndItsSpansDropped() async throws {
        let status = NIOLockedValueBox(HTTPResponseStatus.serviceUnavailable)
        try await Self.withCollector({ _ in .json("{}", status: status.withLockedValue { $0 }) }) { collector async throws in
            let lines = Lines()
            let buffer = SpanBuffer(capacity: 100, batchSize: 2)
            let exporter = Self.exporter(collector.url, buffer: buffer, logger: lines.logger)
            var failures = ExportFailureLog(logger: lines.logger)

            for index in 0..<5 { buffer.record(Self.span(index)) }
            await exporter.exportHeld(&failures)
            #expect(collector.requests.count == 1, "after a failure the rest of the batch is not tried")
            #expect(buffer.count == 0, "the failed spans are dropped, not kept")
            var warnings = lines.all.filter { $0.level == .warning }
            #expect(warnings.count == 1)
            #expect(warnings.first?.metadata["spans_dropped"]?.description == "5")
            #expect(warnings.first?.metadata["error"]?.description.contains("503") == true)
            #expect(!warnings.contains { $0.message.contains(collector.url) || "\($0.metadata)".contains(collector.url) },
                    "the endpoint (which may carry credentials) is not logged")

            buffer.record(Self.span(5))
            await exporter.exportHeld(&failures)
            warnings = lines.all.filter { $0.level == .warning }
            #expect(warnings.count == 1, "within a minute of the last line, no new one")

            status.withLockedValue { $0 = .ok }
            buffer.record(Self.span(6))
            await exporter.exportHeld(&failures)
            let recovered = try #require(lines.all.last)
            #expect(recovered.level == .info && recovered.message.contains("again"))
            #expect(recovered.metadata["spans_dropped"]?.description == "1", "what was lost since the last warning")
        }
    }

    @Test func failureLinesComeAtMostOnceAMinute() {
        let lines = Lines()
        var log = ExportFailureLog(logger: lines.logger)
        let start = ContinuousClock.now
        log.failed("down", spans: 3, now: start)
        log.failed("down", spans: 4, now: start + .seconds(30))
        log.failed("down", spans: 5, now: start + .seconds(59))
        #expect(lines.all.count == 1)
        log.failed("down", spans: 6, now: start + .seconds(61))
        #expect(lines.all.count == 2)
        #expect(lines.all[1].metadata["failed_exports"]?.description == "3")
        #expect(lines.all[1].metadata["spans_dropped"]?.description == "15")
        log.succeeded()
        log.succeeded()
        #expect(lines.all.count == 3, "one line when exports work again, none after")
        log.failed("down again", spans: 1, now: start + .seconds(62))
        #expect(lines.all.count == 4, "a new outage is reported at once")
    }

    @Test func runFlushesWhatIsHeldWhenClosedAndReturns() async throws {
        try await Self.withCollector { collector async throws in
            let lines = Lines()
            let buffer = SpanBuffer()
            let exporter = Self.exporter(collector.url, buffer: buffer, logger: lines.logger, interval: .seconds(60))
            let running = Task { await exporter.run() }
            for index in 0..<3 { buffer.record(Self.span(index)) }
            try await Task.sleep(for: .milliseconds(50))
            buffer.close()
            let started = ContinuousClock.now
            await running.value
            #expect(ContinuousClock.now - started < .seconds(30))
            let names = try collector.requests.flatMap { request in
                try TracingEncodingTests.Message(request.body).message(1).message(2).messages(2).compactMap { $0.string(5) }
            }
            #expect(names == ["span 0", "span 1", "span 2"])
        }
    }

    @Test func runExportsEveryInterval() async throws {
        try await Self.withCollector { collector async throws in
            let lines = Lines()
            let buffer = SpanBuffer()
            let exporter = Self.exporter(collector.url, buffer: buffer, logger: lines.logger, interval: .milliseconds(50))
            let running = Task { await exporter.run() }
            buffer.record(Self.span(0))
            #expect(await collector.waitForRequests(1).count == 1)
            buffer.record(Self.span(1))
            #expect(await collector.waitForRequests(2).count == 2, "a second interval, a second export")
            running.cancel()
            await running.value
        }
    }
}
