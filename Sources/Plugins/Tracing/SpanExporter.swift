import Kernel
import Logging
import NIOCore
import NIOHTTP1

/// Sends the spans of the `SpanBuffer` to the collector, by OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp):
/// every `interval`, or sooner when a batch is ready, it takes what the buffer holds, encodes
/// it and POSTs it to `{otlp_endpoint}/v1/traces` with the Kernel's `UpstreamClient`, in
/// requests of at most `SpanBuffer.batchSize` spans. It runs as one background job on the
/// `sluice-bgwork` thread (docs/ARCHITECTURE.md, "Threads and tasks"): requests never wait for
/// it. A failed export is logged (rate-limited) and its spans dropped, never retried: spans
/// keep coming, and the buffer's bound is what protects memory.
final class SpanExporter: Sendable {
    enum Encoding: Sendable {
        case protobuf
        case json

        var contentType: String {
            switch self {
            case .protobuf: OTLPProtobuf.contentType
            case .json: OTLPJSON.contentType
            }
        }
    }

    /// The longest an export may take, connecting included: OTLP's default (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    /// The export job runs apart from requests, so a slow collector costs them nothing.
    static let timeout: Duration = .seconds(10)

    let buffer: SpanBuffer
    let url: String
    let encoding: Encoding
    let resource: OTLPResource
    let interval: Duration
    private let upstream: UpstreamClient
    private let allocator: ByteBufferAllocator
    private let logger: Logger

    init(buffer: SpanBuffer, url: String, encoding: Encoding, resource: OTLPResource, interval: Duration,
         upstream: UpstreamClient, allocator: ByteBufferAllocator, logger: Logger) {
        self.buffer = buffer
        self.url = url
        self.encoding = encoding
        self.resource = resource
        self.interval = interval
        self.upstream = upstream
        self.allocator = allocator
        self.logger = logger
    }

    /// Exports until the buffer is closed (then exports what it still holds, and returns) or
    /// the task is cancelled (then returns at once).
    func run() async {
        var failures = ExportFailureLog(logger: logger)
        while true {
            await buffer.waitForBatch(orFor: interval)
            if Task.isCancelled { return }
            // Read before the take, so that the last take holds every span recorded before the
            // close (the shutdown comes after the last request); a close during an export is
            // seen on the next turn, which then returns at once from its wait.
            let closing = buffer.isClosed
            await exportHeld(&failures)
            if closing { return }
        }
    }

    /// Exports every span the buffer holds now, in requests of at most a batch each. After a
    /// failure the rest are dropped too: the next request would most likely fail the same way,
    /// and each may take `timeout`.
    func exportHeld(_ failures: inout ExportFailureLog) async {
        let batch = buffer.take()
        if batch.dropped > 0 {
            logger.warning("tracing: the span buffer was full; spans were dropped (the collector is slow or unreachable)",
                           metadata: ["spans_dropped": .stringConvertible(batch.dropped), "capacity": .stringConvertible(buffer.capacity)])
        }
        var start = batch.spans.startIndex
        while start < batch.spans.endIndex {
            let end = min(start + buffer.batchSize, batch.spans.endIndex)
            do {
                try await send(batch.spans[start..<end])
            } catch {
                failures.failed(String(describing: error), spans: batch.spans.endIndex - start)
                return
            }
            start = end
        }
        if !batch.spans.isEmpty { failures.succeeded() }
    }

    /// POSTs one request; throws when the collector cannot be reached or does not accept it.
    func send(_ spans: ArraySlice<SpanRecord>) async throws {
        let body = switch encoding {
        case .protobuf: OTLPProtobuf.encode(spans, resource: resource, allocator: allocator)
        case .json: OTLPJSON.encode(spans, resource: resource, allocator: allocator)
        }
        let request = UpstreamRequest(
            method: .POST, url: url, headers: ["content-type": encoding.contentType], body: body,
            timeouts: UpstreamTimeouts(connect: Self.timeout, firstByte: Self.timeout, total: Self.timeout),
            maxResponseBytes: 1 << 20)
        let response = try await upstream.send(request)
        // OTLP/HTTP: success is 200 (possibly with a partial success, which is the collector's to
        // log); anything else means the request was not accepted, and it is not retried here.
        guard (200..<300).contains(response.status) else { throw ExportRefused(status: response.status) }
    }

    struct ExportRefused: Error, CustomStringConvertible {
        var status: Int
        var description: String { "the collector answered HTTP \(status)" }
    }
}
