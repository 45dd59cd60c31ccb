import NIOCore
import NIOHTTP1

/// An HTTP/1.1 request's head, as the bytes the NIO transport sends: the request line, the
/// caller's headers, `host` unless the caller gave one, and the framing, which is the transport's
/// own: `content-length` for a body (and 0 for a POST, PUT or PATCH without one), never a
/// caller's `content-length` or `transfer-encoding`.
///
/// Made once per request, before a connection is taken, and sent again as it is if the request
/// meets a kept-alive connection the provider had just closed. Written here rather than by NIO's
/// request encoder and header validator: as three typed parts passing through those two
/// handlers and the response decoder (which watches every write for the request's method), a
/// request's head cost more than the rest of its trip through the transport.
///
/// It is checked as NIO's `NIOHTTPRequestHeadersValidator` checks it (`HTTPSyntax`): a header
/// that does not pass is refused before anything is sent, as a target that does not.
enum UpstreamRequestHead {
    static func bytes(method: HTTPMethod, target: String, host: Substring, headers: HTTPHeaders,
                      bodyLength: Int?) throws(UpstreamError) -> ByteBuffer {
        guard HTTPSyntax.isValidTarget(target) else { throw .failed("the request's target has a character HTTP does not allow in it") }
        let methodName = method.rawValue
        var size = methodName.utf8.count + target.utf8.count + " HTTP/1.1\r\n\r\n".utf8.count + 1
        var hasHost = false
        for (name, value) in headers {
            if HTTPSyntax.isNamed(name, "host") { hasHost = true }
            if HTTPSyntax.isFraming(name) { continue }
            try check(name: name, value: value)
            size += HeadWriter.size(name: name, value: value)
        }
        if !hasHost { size += "host: \r\n".utf8.count + host.utf8.count }
        let length = bodyLength ?? (method == .POST || method == .PUT || method == .PATCH ? 0 : nil)
        if let length { size += "content-length: \r\n".utf8.count + DecimalText.length(of: length) }

        var head = ByteBufferAllocator().buffer(capacity: size)
        HeadWriter.write(size, to: &head) { out in
            out.put(methodName)
            out.put(" ")
            out.put(target)
            out.put(" HTTP/1.1\r\n")
            for (name, value) in headers where !HTTPSyntax.isFraming(name) { out.put(name: name, value: value) }
            if !hasHost {
                out.put("host: ")
                out.put(host)
                out.put("\r\n")
            }
            if let length {
                out.put("content-length: ")
                out.put(decimal: length)
                out.put("\r\n")
            }
            out.put("\r\n")
        }
        return head
    }

    /// Checks the headers of a request that curl sends: it sends them as they are given.
    static func check(_ headers: HTTPHeaders) throws(UpstreamError) {
        for (name, value) in headers { try check(name: name, value: value) }
    }

    private static func check(name: String, value: String) throws(UpstreamError) {
        guard HTTPSyntax.isToken(name) else { throw .failed("a request header's name is not an HTTP token") }
        guard HTTPSyntax.isValidValue(value) else { throw .failed("the request header \(name) has a control character in its value") }
    }
}
