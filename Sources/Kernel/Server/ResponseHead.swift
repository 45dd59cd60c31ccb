import NIOCore
import NIOHTTP1

/// An answer's head as the bytes the server writes: the status line, the answer's headers, and
/// the framing, which is the writer's own (a handler's `content-length` or `transfer-encoding`
/// is never sent as it is).
///
/// Written here rather than by NIO's response encoder and header validator, for the reason the
/// NIO transport writes its request heads itself (`UpstreamRequestHead`): an answer passing
/// through them as three typed parts cost more than anything else the server did for it. It is
/// checked as `NIOHTTPResponseHeadersValidator` checks it (`HTTPSyntax`).
enum ResponseHead {
    enum Framing: Equatable {
        /// `content-length`.
        case length(Int)
        /// `transfer-encoding: chunked` (HTTP/1.1 only).
        case chunked
        /// Neither: the answer has no body, or (HTTP/1.0) its body ends when the connection does.
        case none
    }

    /// The head, or nil when a header (or the status's reason) has bytes HTTP cannot carry.
    /// `close` replaces the answer's own `connection` headers with `connection: close`;
    /// `body`, when given, follows the head in the same buffer (one write for both).
    static func bytes(status: HTTPResponseStatus, headers: HTTPHeaders, version: HTTPVersion, framing: Framing, close: Bool,
                      followedBy body: ByteBuffer? = nil, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let reason = status.reasonPhrase
        guard HTTPSyntax.isValidValue(reason) else { return nil }
        var size = "HTTP/1.1 200 \r\n\r\n".utf8.count + reason.utf8.count
        for (name, value) in headers where !skips(name, close: close) {
            guard HTTPSyntax.isToken(name), HTTPSyntax.isValidValue(value) else { return nil }
            size += HeadWriter.size(name: name, value: value)
        }
        if close { size += "connection: close\r\n".utf8.count }
        switch framing {
        case .length(let length):
            size += "content-length: \r\n".utf8.count + DecimalText.length(of: length)
        case .chunked:
            size += "transfer-encoding: chunked\r\n".utf8.count
        case .none:
            break
        }

        var head = allocator.buffer(capacity: size + (body?.readableBytes ?? 0))
        HeadWriter.write(size, to: &head) { out in
            out.put(version.major == 1 && version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            out.put(code: status.code)
            out.put(" ")
            out.put(reason)
            out.put("\r\n")
            for (name, value) in headers where !skips(name, close: close) { out.put(name: name, value: value) }
            if close { out.put("connection: close\r\n") }
            switch framing {
            case .length(let length):
                out.put("content-length: ")
                out.put(decimal: length)
                out.put("\r\n")
            case .chunked:
                out.put("transfer-encoding: chunked\r\n")
            case .none:
                break
            }
            out.put("\r\n")
        }
        if let body { head.writeImmutableBuffer(body) }
        return head
    }

    /// `100 (Continue)`: an interim answer, with no headers.
    static func `continue`(version: HTTPVersion, allocator: ByteBufferAllocator) -> ByteBuffer {
        var head = allocator.buffer(capacity: 25)
        head.writeString("HTTP/\(version.major).\(version.minor) 100 Continue\r\n\r\n")
        return head
    }

    private static func skips(_ name: String, close: Bool) -> Bool {
        HTTPSyntax.isFraming(name) || (close && HTTPSyntax.isNamed(name, "connection"))
    }
}

private extension HeadWriter {
    /// A status code, always three digits on the wire (RFC 9110 §15).
    mutating func put(code: UInt) {
        let code = min(code, 999)
        let digits = (UInt8(ascii: "0") + UInt8(code / 100), UInt8(ascii: "0") + UInt8(code / 10 % 10), UInt8(ascii: "0") + UInt8(code % 10))
        withUnsafeBytes(of: digits) { put(bytes: $0) }
    }
}
