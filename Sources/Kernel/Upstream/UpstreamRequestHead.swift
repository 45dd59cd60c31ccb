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
/// It is checked as NIO's `NIOHTTPRequestHeadersValidator` checks it (RFC 9110, RFC 9112): the
/// target has only the characters a request-target may carry, a header's name is a token, and
/// its value has no control character but the tab. A header that does not pass is refused
/// before anything is sent: its CR or LF would end the head early and start a request of its own.
enum UpstreamRequestHead {
    static func bytes(method: HTTPMethod, target: String, host: Substring, headers: HTTPHeaders,
                      bodyLength: Int?) throws(UpstreamError) -> ByteBuffer {
        guard isValidTarget(target) else { throw .failed("the request's target has a character HTTP does not allow in it") }
        // Checked and measured first, then written in one go: a write to a `ByteBuffer` per piece
        // cost more than the rest of the head.
        let methodName = method.rawValue
        var size = methodName.utf8.count + target.utf8.count + " HTTP/1.1\r\n\r\n".utf8.count + 1
        var hasHost = false
        for (name, value) in headers {
            if isNamed(name, "host") { hasHost = true }
            if isFraming(name) { continue }
            try check(name: name, value: value)
            size += name.utf8.count + value.utf8.count + 4
        }
        if !hasHost { size += "host: \r\n".utf8.count + host.utf8.count }
        let length = bodyLength ?? (method == .POST || method == .PUT || method == .PATCH ? 0 : nil)
        let lengthText = length.map { String($0) }
        if let lengthText { size += "content-length: \r\n".utf8.count + lengthText.utf8.count }

        var head = ByteBufferAllocator().buffer(capacity: size)
        head.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = Writer(base: raw.baseAddress!)
            out.put(methodName)
            out.put(" ")
            out.put(target)
            out.put(" HTTP/1.1\r\n")
            for (name, value) in headers where !isFraming(name) {
                out.put(name)
                out.put(": ")
                out.put(value)
                out.put("\r\n")
            }
            if !hasHost {
                out.put("host: ")
                out.put(host)
                out.put("\r\n")
            }
            if let lengthText {
                out.put("content-length: ")
                out.put(lengthText)
                out.put("\r\n")
            }
            out.put("\r\n")
            assert(out.offset == size, "the head's size was measured wrong")
            return out.offset
        }
        return head
    }

    /// Checks the headers of a request that curl sends: it sends them as they are given.
    static func check(_ headers: HTTPHeaders) throws(UpstreamError) {
        for (name, value) in headers { try check(name: name, value: value) }
    }

    private static func check(name: String, value: String) throws(UpstreamError) {
        guard isToken(name) else { throw .failed("a request header's name is not an HTTP token") }
        guard isValidValue(value) else { throw .failed("the request header \(name) has a control character in its value") }
    }

    /// Copies text to memory measured for it.
    private struct Writer {
        let base: UnsafeMutableRawPointer
        var offset = 0

        mutating func put(_ text: StaticString) {
            (base + offset).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
            offset += text.utf8CodeUnitCount
        }

        mutating func put(_ text: some StringProtocol) {
            let copied = text.utf8.withContiguousStorageIfAvailable { bytes in
                if let start = bytes.baseAddress { (base + offset).copyMemory(from: start, byteCount: bytes.count) }
                return bytes.count
            }
            if let copied {
                offset += copied
            } else {
                for byte in text.utf8 {
                    base.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
                    offset += 1
                }
            }
        }
    }

    /// `content-length` or `transfer-encoding`, in any case.
    private static func isFraming(_ name: String) -> Bool {
        isNamed(name, "content-length") || isNamed(name, "transfer-encoding")
    }

    /// Whether a header's name is `lowercase`, in any case (without making a lowercased copy).
    private static func isNamed(_ name: String, _ lowercase: StaticString) -> Bool {
        guard name.utf8.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return zip(name.utf8, expected).allSatisfy { byte, lower in
            byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == lower)
        }
    }

    /// RFC 9110's token: `!#$%&'*+-.^_`|~`, digits and letters.
    private static func isToken(_ name: String) -> Bool {
        !name.isEmpty && allBytes(of: name) { byte in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                 UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
                 UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                true
            default:
                false
            }
        }
    }

    /// No control character (CR, LF and NUL among them) but the tab; bytes from 0x80 are allowed.
    private static func isValidValue(_ value: String) -> Bool {
        allBytes(of: value) { byte in byte >= 0x20 ? byte != 0x7F : byte == UInt8(ascii: "\t") }
    }

    /// RFC 9112's request-target: letters, digits, `-._~`, `:/?#[]@`, `!$&'()*+,;=` and `%`.
    private static func isValidTarget(_ target: String) -> Bool {
        !target.isEmpty && allBytes(of: target) { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
                 UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "["), UInt8(ascii: "]"),
                 UInt8(ascii: "@"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
                 UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
                 UInt8(ascii: "%"):
                true
            default:
                false
            }
        }
    }

    /// On the string's contiguous bytes where it has them (a native string does), not through
    /// the UTF-8 view's iterator.
    private static func allBytes(of text: String, satisfy test: (UInt8) -> Bool) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(test) } ?? text.utf8.allSatisfy(test)
    }
}
