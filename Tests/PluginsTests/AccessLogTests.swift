import Kernel
import KernelTesting
import Logging
import NIOHTTP1
import Testing

/// `access-log` (Sources/Plugins/Logging) through an in-process gateway: its lines are captured
/// by `LogCapture` and picked out by the request ids each test sends. The JSON rendering of the
/// lines (stdout, journald) is the Kernel's and is checked by Tests/Integration/test_observability.py.
@Suite struct AccessLogTests {
    static let pipelineTail = #"""
        {"plugin": "api-key-auth", "config": {"keys": [{"name": "a", "key": "key-a-0123"}]}},
        {"plugin": "router", "config": {"retries": 0}}]
        """#
    static let models = #"""
        "m": {"targets": [{"provider": "p", "model": "up-m"}], "price": {"input_per_million": 1, "output_per_million": 2}},
        "down": {"targets": [{"provider": "broken", "model": "up-down"}], "fallbacks": ["m"]},
        "gone": {"targets": [{"provider": "broken", "model": "up-gone"}]}
        """#

    static func manifest(_ config: String = "{}") -> String {
        """
        {"providers": {"p": {"plugin": "scripted", "config": {"reply": "hello from the script", "input_tokens": 3}},
                       "broken": {"plugin": "scripted", "config": {"fail_status": 503}}},
         "models": {\(models)},
         "pipeline": [{"plugin": "access-log", "config": \(config)}, \(pipelineTail)}
        """
    }

    static func headers(_ sink: LogSink, _ id: String, key: String? = "key-a-0123") -> HTTPHeaders {
        var headers: HTTPHeaders = ["x-request-id": sink.requestID(id)]
        if let key { headers.add(name: "authorization", value: "Bearer \(key)") }
        return headers
    }

    /// The one access-log line of a request.
    static func line(_ sink: LogSink, _ id: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> LogLine {
        let lines = await sink.lines(for: id, label: "sluice.access")
        #expect(lines.count == 1, "\(lines.count) access-log lines for \(id)", sourceLocation: sourceLocation)
        return try #require(lines.first, sourceLocation: sourceLocation)
    }

    @Test func oneLinePerAnswerWithItsFields() async throws {
        let sink = LogCapture.sink()
        try await withGateway(Self.manifest()) { gateway async throws in
            let answer = try await gateway.chat(model: "m", "hello", headers: Self.headers(sink, "whole"))
            #expect(answer.headers.first(name: "x-request-id") == sink.requestID("whole"))
            let line = try await Self.line(sink, "whole")
            #expect(line.message == "request")
            #expect(line.level == .info)
            for (field, value) in [("front_door", "openai"), ("operation", "chat.completions"), ("model", "m"), ("status", "200"),
                                   ("attempts", "1"), ("stream", "false"), ("key_name", "a"), ("provider", "p"),
                                   ("upstream_model", "up-m"), ("input_tokens", "3"), ("output_tokens", "4")] {
                #expect(line[field] == value, "\(field)")
            }
            // 3 input tokens at $1 and 4 output tokens at $2 per million.
            #expect(line["cost_usd"].flatMap(Double.init).map { abs($0 - 11e-6) < 1e-12 } == true, "\(line["cost_usd"] ?? "none")")
            let latency = try #require(line["latency_ms"].flatMap(Double.init))
            let upstream = try #require(line["upstream_ms"].flatMap(Double.init))
            let overhead = try #require(line["overhead_ms"].flatMap(Double.init))
            #expect(latency >= 0 && upstream >= 0 && overhead >= 0)
            #expect(abs(upstream + overhead - latency) < 0.05)
            for absent in ["stream_end", "ttft_ms", "fallback", "error_type", "headers", "request_body", "response_body", "trace_id", "cache"] {
                #expect(line[absent] == nil, "\(absent)")
            }
        }
    }

    @Test func aStreamIsLoggedWhenItEnds() async throws {
        let sink = LogCapture.sink()
        try await withGateway(Self.manifest()) { gateway async throws in
            var headers = Self.headers(sink, "stream")
            headers.add(name: "traceparent", value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            let streamed = try await gateway.chat(model: "m", "hello", stream: true, headers: headers)
            #expect(streamed.text == "hello from the script")
            let line = try await Self.line(sink, "stream")
            #expect(line["stream"] == "true")
            #expect(line["trace_id"] == "0af7651916cd43dd8448eb211c80319c")  // read before the headers are let go
            #expect(line["headers"] == nil)
            #expect(line["stream_end"] == "complete")
            #expect(line["status"] == "200")
            #expect(line["output_tokens"] == "4")
            let ttft = try #require(line["ttft_ms"].flatMap(Double.init))
            #expect(ttft <= (line["latency_ms"].flatMap(Double.init) ?? 0))
        }
    }

    @Test func refusalsAndFailuresAreLoggedToo() async throws {
        let sink = LogCapture.sink()
        try await withGateway(Self.manifest()) { gateway async throws in
            #expect(try await gateway.chat(model: "m", "hi", headers: Self.headers(sink, "anon", key: "wrong")).status == .unauthorized)
            let refused = try await Self.line(sink, "anon")
            #expect(refused["status"] == "401")
            #expect(refused["model"] == "")
            #expect(refused["attempts"] == "0")
            #expect(refused["error_type"] == "authentication_error")
            #expect(refused["key_name"] == nil)

            #expect(try await gateway.chat(model: "gone", "hi", headers: Self.headers(sink, "gone")).status == .serviceUnavailable)
            let failed = try await Self.line(sink, "gone")
            #expect(failed["status"] == "503")
            #expect(failed["attempts"] == "1")
            #expect(failed["error_type"] == "upstream_error")
            #expect(failed["key_name"] == "a")

            #expect(try await gateway.chat(model: "down", "hi", headers: Self.headers(sink, "fallback")).status == .ok)
            let fallback = try await Self.line(sink, "fallback")
            #expect(fallback["fallback"] == "true")
            #expect(fallback["attempts"] == "2")
            #expect(fallback["model"] == "down")
            #expect(fallback["upstream_model"] == "up-m")

            var traced = Self.headers(sink, "traced")
            traced.add(name: "traceparent", value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            _ = try await gateway.chat(model: "m", "hi", headers: traced)
            #expect(try await Self.line(sink, "traced")["trace_id"] == "0af7651916cd43dd8448eb211c80319c")
        }
    }

    @Test func headersAreLoggedWithCredentialsRedacted() async throws {
        let sink = LogCapture.sink()
        try await withGateway(Self.manifest(#"{"log_headers": true}"#)) { gateway async throws in
            var headers = Self.headers(sink, "headers")
            headers.add(name: "X-Api-Key", value: "k")
            headers.add(name: "X-Note", value: "key-a-0123")
            headers.add(name: "X-Team", value: "search")
            _ = try await gateway.chat(model: "m", "hi", headers: headers)
            let line = try await Self.line(sink, "headers")
            guard case .dictionary(let logged)? = line.metadata["headers"] else {
                Issue.record("no headers: \(line.metadata)")
                return
            }
            #expect(logged["authorization"].map { "\($0)" } == "[redacted]")
            #expect(logged["x-api-key"].map { "\($0)" } == "[redacted]")
            #expect(logged["x-note"].map { "\($0)" } == "[redacted]")  // one of the manifest's keys, under any name
            #expect(logged["x-team"].map { "\($0)" } == "search")
            #expect(logged["x-request-id"].map { "\($0)" } == sink.requestID("headers"))
            #expect(!"\(line.metadata)".contains("key-a-0123"))

            // A stream's line, written when it ends, has them too.
            _ = try await gateway.chat(model: "m", "hi", stream: true, headers: Self.headers(sink, "streamed-headers"))
            let streamed = try await Self.line(sink, "streamed-headers")
            guard case .dictionary(let streamedHeaders)? = streamed.metadata["headers"] else {
                Issue.record("no headers on a stream's line: \(streamed.metadata)")
                return
            }
            #expect(streamedHeaders["x-request-id"].map { "\($0)" } == sink.requestID("streamed-headers"))
        }
    }

    @Test func bodiesAreLoggedOnRequestAndCut() async throws {
        let sink = LogCapture.sink()
        try await withGateway(Self.manifest(#"{"log_bodies": true, "max_body_chars": 40}"#)) { gateway async throws in
            _ = try await gateway.chat(model: "m", "a question long enough to be cut", headers: Self.headers(sink, "bodies"))
            let line = try await Self.line(sink, "bodies")
            let request = try #require(line["request_body"])
            #expect(request.hasSuffix("…[cut]"))
            #expect(request.count == 40 + "…[cut]".count)
            #expect(request.hasPrefix("{"))
            let response = try #require(line["response_body"])
            #expect(response.hasSuffix("…[cut]"))
            #expect(response.hasPrefix("{"))
            #expect(response.count == 40 + "…[cut]".count)

            _ = try await gateway.chat(model: "m", "streamed", stream: true, headers: Self.headers(sink, "stream"))
            let streamed = try await Self.line(sink, "stream")
            #expect(streamed["request_body"] != nil)
            #expect(streamed["response_body"] == nil)
        }
        try await withGateway(Self.manifest()) { gateway async throws in
            _ = try await gateway.chat(model: "m", "not logged", headers: Self.headers(sink, "quiet"))
            #expect(try await Self.line(sink, "quiet")["request_body"] == nil)
        }
    }
}
