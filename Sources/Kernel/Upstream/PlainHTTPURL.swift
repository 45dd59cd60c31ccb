/// An `http://` URL taken apart for the NIO transport: where to connect and what to ask for.
/// Forms it does not take (user info, another scheme) are left to curl. Every request's URL is
/// taken apart, so it is read as bytes at integer offsets: a walk through `String`'s indices and
/// `Substring`s cost more than the rest of the upstream call's set-up.
struct PlainHTTPURL: Sendable {
    /// Host and port: the key of a keep-alive pool.
    struct Origin: Hashable, Sendable {
        var host: String
        var port: Int
    }

    var origin: Origin
    /// The `Host` header: the URL's authority as written.
    var authority: Substring
    /// The request target: path and query, `/` when the URL has no path.
    var target: String

    init?(_ url: String) {
        var url = url
        guard let parts = url.withUTF8(Self.parts) else { return nil }
        let utf8 = url.utf8
        let authorityStart = utf8.index(utf8.startIndex, offsetBy: Self.scheme.count)
        authority = url[authorityStart..<utf8.index(authorityStart, offsetBy: parts.authorityLength)]
        origin = Origin(host: parts.host, port: parts.port)
        target = parts.target
    }

    private static let scheme = Array("http://".utf8)

    /// The URL's parts read from its bytes; nil for a URL this transport does not take.
    private static func parts(_ bytes: UnsafeBufferPointer<UInt8>) -> (host: String, port: Int, authorityLength: Int, target: String)? {
        let scheme = Self.scheme  // read once: a static is behind a once-check on every access
        // The scheme in any case, then "://".
        guard bytes.count >= scheme.count,
              (0..<scheme.count).allSatisfy({ index in (index < 4 ? bytes[index] | 0x20 : bytes[index]) == scheme[index] })
        else { return nil }
        let start = scheme.count
        var authorityEnd = start
        while authorityEnd < bytes.count, bytes[authorityEnd] != UInt8(ascii: "/"), bytes[authorityEnd] != UInt8(ascii: "?"),
              bytes[authorityEnd] != UInt8(ascii: "#") {
            guard bytes[authorityEnd] != UInt8(ascii: "@") else { return nil }  // user info: curl's
            authorityEnd += 1
        }
        guard start < authorityEnd else { return nil }

        var host = start..<authorityEnd
        var port = 80
        var portStart: Int?
        if bytes[start] == UInt8(ascii: "[") {
            guard let close = (start..<authorityEnd).first(where: { bytes[$0] == UInt8(ascii: "]") }) else { return nil }
            host = (start + 1)..<close
            if close + 1 < authorityEnd {
                guard bytes[close + 1] == UInt8(ascii: ":") else { return nil }
                portStart = close + 2
            }
        } else if let colon = (start..<authorityEnd).last(where: { bytes[$0] == UInt8(ascii: ":") }) {
            host = start..<colon
            portStart = colon + 1
        }
        if let portStart {
            // Digits only (RFC 3986's port), few enough that the range check below sees them all.
            let digits = portStart..<authorityEnd
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ bytes[$0] &- UInt8(ascii: "0") < 10 }) else { return nil }
            port = digits.reduce(0) { $0 * 10 + Int(bytes[$1] &- UInt8(ascii: "0")) }
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }

        let targetEnd = (authorityEnd..<bytes.count).first(where: { bytes[$0] == UInt8(ascii: "#") }) ?? bytes.count
        let path = String(decoding: UnsafeBufferPointer(rebasing: bytes[authorityEnd..<targetEnd]), as: UTF8.self)
        let target = authorityEnd < targetEnd && bytes[authorityEnd] == UInt8(ascii: "/") ? path : "/" + path
        return (String(decoding: UnsafeBufferPointer(rebasing: bytes[host]), as: UTF8.self), port, authorityEnd - start, target)
    }
}
