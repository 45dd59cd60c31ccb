import NIOCore
import NIOHTTP1
import Testing
@testable import Kernel

/// The NIO transport (docs/ARCHITECTURE.md, "Upstream transports") against a provider that
/// misbehaves on cue: keep-alive, the resend of a request that met a closed connection, every
/// deadline, back-pressure, cancellation, limits and the shutdown.
@Suite struct NIOTransportTests {
    let client = UpstreamClient(environment: [:])

    func get(_ url: String, timeouts: UpstreamTimeouts = .init(), maxResponseBytes: Int = 1 << 20) -> UpstreamRequest {
        UpstreamRequest(method: .GET, url: url, timeouts: timeouts, maxResponseBytes: maxResponseBytes, transport: .nio)
    }

    @Test func requestsOneAfterAnotherShareOneConnection() async throws {
        let server = try await ScriptedUpstream.start()
        defer { Task { await server.shutdown() } }
        for _ in 0..<5 {
            let response = try await client.send(get(server.url + "/v1/models?limit=2"))
            #expect(response.status == 200)
            #expect(String(buffer: response.body) == "ok")
        }
        #expect(server.connections == 1)
        #expect(server.requests.first?.hasPrefix("GET /v1/models?limit=2 HTTP/1.1\r\n") == true)
        #expect(server.requests.first?.lowercased().contains("host: 127.0.0.1:\(server.port)\r\n") == true)
    }

    @Test func theBodyGoesOutAsGivenWithItsLength() async throws {
        let server = try await ScriptedUpstream.start()
        defer { Task { await server.shutdown() } }
        let body = #"{"model":"m","messages":[]}"#
        _ = try await client.send(UpstreamRequest(url: server.url + "/v1/chat/completions", headers: ["content-type": "application/json"],
                                                  body: ByteBuffer(string: body), transport: .nio))
        let request = try #require(server.requests.first)
        #expect(request.hasPrefix("POST /v1/chat/completions HTTP/1.1\r\n"))
        #expect(request.lowercased().contains("content-length: \(body.utf8.count)\r\n"))
        #expect(request.hasSuffix("\r\n\r\n" + body))
    }

    @Test func aRequestThatMeetsAClosedKeptConnectionIsSentOnceMoreOnANewOne() async throws {
        let server = try await ScriptedUpstream.start([ScriptedUpstream.ok("first"), .close, ScriptedUpstream.ok("second")])
        defer { Task { await server.shutdown() } }
        #expect(String(buffer: try await client.send(get(server.url)).body) == "first")
        #expect(String(buffer: try await client.send(get(server.url)).body) == "second")
        #expect(server.connections == 2)
        #expect(server.requests.count == 3)
    }

    /// The response decoder is told each request's method: a HEAD's answer says its length and
    /// has no body, and the connection carries the next request.
    @Test func theAnswerToAHeadHasNoBody() async throws {
        let server = try await ScriptedUpstream.start([.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"), ScriptedUpstream.ok("next")])
        defer { Task { await server.shutdown() } }
        let head = try await client.send(UpstreamRequest(method: .HEAD, url: server.url, timeouts: UpstreamTimeouts(total: .seconds(5)),
                                                         transport: .nio))
        #expect(head.status == 200)
        #expect(head.body.readableBytes == 0)
        #expect(String(buffer: try await client.send(get(server.url)).body) == "next")
        #expect(server.connections == 1)
    }

    /// curl sends the headers it is given as they are: they are checked before it gets them.
    @Test(arguments: [UpstreamTransport.nio, .curl])
    func aHeaderThatWouldSplitTheRequestNeverLeaves(transport: UpstreamTransport) async throws {
        let server = try await ScriptedUpstream.start()
        defer { Task { await server.shutdown() } }
        let error = await #expect(throws: UpstreamError.self) {
            try await client.send(UpstreamRequest(url: server.url, headers: ["x-note": "a\r\n\r\nGET /admin HTTP/1.1"],
                                                  body: ByteBuffer(string: "{}"), transport: transport))
        }
        guard case .failed = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(server.requests.isEmpty)
        #expect(server.connections == 0)
    }

    @Test func aNewConnectionClosedWithoutAnAnswerFailsAndIsNotSentAgain() async throws {
        let server = try await ScriptedUpstream.start([.close])
        defer { Task { await server.shutdown() } }
        await #expect(throws: UpstreamError.self) { try await client.send(get(server.url)) }
        #expect(server.requests.count == 1)
    }

    @Test func anAnswerCutShortIsAnError() async throws {
        let server = try await ScriptedUpstream.start([.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"), .close])
        defer { Task { await server.shutdown() } }
        // The close comes with the next request; this one waits for six more bytes that never come.
        let error = await #expect(throws: UpstreamError.self) {
            try await client.send(get(server.url, timeouts: UpstreamTimeouts(total: .milliseconds(300))))
        }
        #expect(error == .timedOut(.total))
    }

    @Test func connectionClosesAfterAnAnswerThatSaysSo() async throws {
        let server = try await ScriptedUpstream.start([ScriptedUpstream.ok("a", headers: "connection: close\r\n"), ScriptedUpstream.ok("b")])
        defer { Task { await server.shutdown() } }
        _ = try await client.send(get(server.url))
        _ = try await client.send(get(server.url))
        #expect(server.connections == 2)
    }

    @Test func firstByteDeadline() async throws {
        let server = try await ScriptedUpstream.start([.silence])
        defer { Task { await server.shutdown() } }
        let error = await #expect(throws: UpstreamError.self) {
            try await client.send(get(server.url, timeouts: UpstreamTimeouts(firstByte: .milliseconds(200))))
        }
        #expect(error == .timedOut(.firstByte))
    }

    /// The loop's one deadline timer is set for the first request's distant deadline; a later
    /// request's nearer one must still fire on time.
    @Test func aNearDeadlineAfterAFarOneFiresOnTime() async throws {
        let server = try await ScriptedUpstream.start([.silence, .silence])
        defer { Task { await server.shutdown() } }
        let transport = NIOTransport()
        let url = try #require(PlainHTTPURL(server.url))
        let far = Task { try await transport.send(get(server.url, timeouts: UpstreamTimeouts(total: .seconds(60))), to: url) }
        defer { far.cancel() }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        let error = await #expect(throws: UpstreamError.self) {
            try await transport.send(get(server.url, timeouts: UpstreamTimeouts(firstByte: .milliseconds(200))), to: url)
        }
        #expect(error == .timedOut(.firstByte))
        #expect(ContinuousClock.now - start < .seconds(5))
        far.cancel()
        await #expect(throws: UpstreamError.cancelled) { try await far.value }
    }

    @Test func anIdleConnectionClosesAfterTheIdleTimeout() async throws {
        let server = try await ScriptedUpstream.start()
        defer { Task { await server.shutdown() } }
        let transport = NIOTransport(idleTimeout: .milliseconds(500))
        let url = try #require(PlainHTTPURL(server.url))
        _ = try await transport.send(get(server.url), to: url)
        try await Task.sleep(for: .milliseconds(1500))
        _ = try await transport.send(get(server.url), to: url)
        #expect(server.connections == 2)  // the first was closed, not reused
        transport.shutdown()
    }

    @Test func refusedConnectionsSayWhere() async throws {
        let server = try await ScriptedUpstream.start()
        let url = server.url
        await server.shutdown()
        let error = await #expect(throws: UpstreamError.self) { try await client.send(get(url)) }
        guard case .connectFailed(let why) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(why.contains("127.0.0.1 port"))
        #expect(why.lowercased().contains("refused"))
    }

    /// An answer of many reads arrives whole and in order (each read is appended to what came
    /// before it in place).
    @Test func anAnswerOfManyReadsArrivesWhole() async throws {
        let answer = (0..<40_000).map { String($0 % 10_000, radix: 36) }.joined(separator: ",")
        let server = try await ScriptedUpstream.start([ScriptedUpstream.ok(answer)])
        defer { Task { await server.shutdown() } }
        let response = try await client.send(get(server.url, maxResponseBytes: 1 << 20))
        #expect(response.body.readableBytes == answer.utf8.count)
        #expect(String(buffer: response.body) == answer)
    }

    @Test func anAnswerLargerThanTheLimitIsRefused() async throws {
        let server = try await ScriptedUpstream.start([ScriptedUpstream.ok(String(repeating: "x", count: 5000))])
        defer { Task { await server.shutdown() } }
        let error = await #expect(throws: UpstreamError.self) { try await client.send(get(server.url, maxResponseBytes: 4096)) }
        #expect(error == .responseTooLarge(limit: 4096))
    }

    @Test func aSlowReaderHoldsTheProviderBack() async throws {
        let server = try await ScriptedUpstream.start([.chunks(count: 4096, size: 16384)])  // 64 MiB
        defer { Task { await server.shutdown() } }
        let response = try await client.stream(get(server.url))
        var iterator = response.body.makeAsyncIterator()
        _ = try await iterator.next()
        try await Task.sleep(for: .milliseconds(500))
        // Only what the socket buffers hold has left the provider: far less than the answer.
        #expect(server.bytesWritten < 32 << 20)
        var read = 0
        while let chunk = try await iterator.next() { read += chunk.readableBytes }
        #expect(read + 16384 >= 64 << 20)
    }

    @Test func aStreamedAnswerReadsAsItsEventsUpToTheirLimit() async throws {
        let events = "data: one\n\nevent: ping\ndata: two\n\ndata: \(String(repeating: "x", count: 100))\n\ndata: never\n\n"
        let server = try await ScriptedUpstream.start([ScriptedUpstream.ok(events, headers: "content-type: text/event-stream\r\n")])
        defer { Task { await server.shutdown() } }
        let response = try await client.stream(get(server.url))
        var received: [SSEEvent] = []
        let error = await #expect(throws: UpstreamError.self) {
            for try await event in EventStream(serverSentEventsOf: response.body, maxEventBytes: 64) { received.append(event) }
        }
        #expect(error == .eventTooLarge(limit: 64))
        #expect(received == [SSEEvent(data: "one"), SSEEvent(event: "ping", data: "two")])
    }

    @Test func droppingAStreamClosesItsConnection() async throws {
        let server = try await ScriptedUpstream.start([.chunks(count: 1024, size: 16384), ScriptedUpstream.ok("next")])
        defer { Task { await server.shutdown() } }
        do {
            let response = try await client.stream(get(server.url))
            var iterator = response.body.makeAsyncIterator()
            _ = try await iterator.next()
        }
        // The half-read connection is not reused: the next request needs a new one.
        #expect(String(buffer: try await client.send(get(server.url)).body) == "next")
        #expect(server.connections == 2)
    }

    @Test func cancellingTheCallerEndsTheTransfer() async throws {
        let server = try await ScriptedUpstream.start([.silence])
        defer { Task { await server.shutdown() } }
        let task = Task { try await client.send(get(server.url)) }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let result = await task.result
        #expect(throws: UpstreamError.cancelled) { try result.get() }
    }

    @Test func shutdownFailsWhatIsInFlightAndWhatComesAfter() async throws {
        let server = try await ScriptedUpstream.start([.silence])
        defer { Task { await server.shutdown() } }
        let client = UpstreamClient(environment: [:])
        let inFlight = Task { try await client.send(get(server.url)) }
        try await Task.sleep(for: .milliseconds(100))
        client.shutdown()
        await #expect(throws: UpstreamError.shutdown) { try await inFlight.value }
        await #expect(throws: UpstreamError.shutdown) { try await client.send(get(server.url)) }
    }

    /// curl says `Accept: */*` unasked and the NIO transport does not: that tells who sent a request.
    @Test(arguments: [
        (UpstreamTransport.automatic, [String: String](), false),
        (.automatic, ["http_proxy": "http://proxy.internal:3128"], true),
        (.nio, ["http_proxy": "http://proxy.internal:3128"], false),
        (.curl, [:], true),
    ])
    func whichTransportCarriesPlainHTTP(transport: UpstreamTransport, environment: [String: String], viaCurl: Bool) async throws {
        let server = try await ScriptedUpstream.start()
        defer { Task { await server.shutdown() } }
        // The process has no http_proxy, so curl goes straight to the server either way.
        let client = UpstreamClient(environment: environment)
        defer { client.shutdown() }
        _ = try await client.send(UpstreamRequest(method: .GET, url: server.url + "/", transport: transport))
        #expect(server.requests.first?.lowercased().contains("accept: */*") == viaCurl)
    }

    @Test(arguments: [
        ("http://127.0.0.1:8080/v1/chat?x=1", "127.0.0.1", 8080, "/v1/chat?x=1", "127.0.0.1:8080"),
        ("http://localhost", "localhost", 80, "/", "localhost"),
        ("HTTP://models.internal?q", "models.internal", 80, "/?q", "models.internal"),
        ("http://[::1]:9000/a#frag", "::1", 9000, "/a", "[::1]:9000"),
        ("http://[::1]/", "::1", 80, "/", "[::1]"),
        ("hTtP://h:65535#f", "h", 65535, "/", "h:65535"),
        ("http://bücher.example:81/pfad/ä?q=ü", "bücher.example", 81, "/pfad/ä?q=ü", "bücher.example:81"),
    ])
    func plainURLs(url: String, host: String, port: Int, target: String, authority: String) throws {
        let parsed = try #require(PlainHTTPURL(url))
        #expect(parsed.origin == .init(host: host, port: port))
        #expect(parsed.target == target)
        #expect(parsed.authority == authority)
    }

    @Test(arguments: ["https://x", "http://", "http://user:pw@host/", "http://host:0/", "http://host:99999/", "http://host:123456/",
                      "http://host:/", "http://host:+80/", "http://host:8a/", "http://:80/", "http://[::1/", "http://[::1]x/", "ftp://x/",
                      "http:/x", "httpx://x"])
    func urlsLeftToCurl(url: String) {
        #expect(PlainHTTPURL(url) == nil)
    }
}
