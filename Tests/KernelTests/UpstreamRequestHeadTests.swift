import NIOCore
import NIOHTTP1
import Testing
@testable import Kernel

/// The bytes of a request's head as the NIO transport sends them (docs/ARCHITECTURE.md,
/// "Upstream transports"): its framing is the transport's, and nothing that would end the head
/// early gets out.
@Suite struct UpstreamRequestHeadTests {
    func text(_ method: HTTPMethod = .POST, target: String = "/v1/chat/completions", headers: HTTPHeaders = [:],
              bodyLength: Int? = nil) throws -> String {
        String(buffer: try UpstreamRequestHead.bytes(method: method, target: target, host: "127.0.0.1:8080", headers: headers,
                                                     bodyLength: bodyLength))
    }

    @Test func theHeadersFollowTheRequestLineInTheirOrderThenHostAndLength() throws {
        let head = try text(headers: ["Authorization": "Bearer k", "content-type": "application/json", "x-request-id": "r\t1"],
                            bodyLength: 27)
        #expect(head == "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer k\r\ncontent-type: application/json\r\n"
            + "x-request-id: r\t1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 27\r\n\r\n")
    }

    @Test func aHostTheCallerGivesIsKept() throws {
        #expect(try text(.GET, target: "/v1/models?limit=2", headers: ["HOST": "api.example"])
            == "GET /v1/models?limit=2 HTTP/1.1\r\nHOST: api.example\r\n\r\n")
    }

    @Test(arguments: [HTTPMethod.POST, .PUT, .PATCH])
    func aMethodThatCarriesABodySaysItsLengthEvenWithout(method: HTTPMethod) throws {
        #expect(try text(method).hasSuffix("\r\ncontent-length: 0\r\n\r\n"))
    }

    @Test func theFramingIsTheTransportsOwn() throws {
        let head = try text(headers: ["Content-Length": "999", "transfer-encoding": "chunked", "TRANSFER-ENCODING": "gzip"], bodyLength: 4)
        #expect(!head.lowercased().contains("transfer-encoding"))
        #expect(!head.contains("999"))
        #expect(head.hasSuffix("content-length: 4\r\n\r\n"))
    }

    @Test(arguments: [
        HTTPHeaders([("x-note", "a\r\nx-injected: 1")]), HTTPHeaders([("x-note", "a\nb")]), HTTPHeaders([("x-note", "a\u{0}b")]),
        HTTPHeaders([("x-note", "a\u{7F}")]), HTTPHeaders([("x note", "a")]), HTTPHeaders([("x-note:", "a")]),
        HTTPHeaders([("", "a")]),
    ])
    func aHeaderThatWouldEndTheHeadIsRefused(headers: HTTPHeaders) {
        #expect(throws: UpstreamError.self) { try text(headers: headers) }
    }

    @Test(arguments: ["/v1/chat completions", "/v1\r\nx-injected: 1", "/v1/\u{E9}", "/a\"b", "/a{b}", ""])
    func aTargetWithACharacterHTTPDoesNotAllowIsRefused(target: String) {
        #expect(throws: UpstreamError.self) { try text(target: target) }
    }

    @Test func nonASCIIValuesPassAsTheyAre() throws {
        #expect(try text(headers: ["x-name": "Zoë"]).contains("x-name: Zoë\r\n"))
    }
}
