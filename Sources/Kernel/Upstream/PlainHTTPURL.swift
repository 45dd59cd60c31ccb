/// An `http://` URL taken apart for the NIO transport: where to connect and what to ask for.
/// Forms it does not take (user info, another scheme) are left to curl. Every request's URL is
/// taken apart, so it is read as bytes: a walk by `Character`s (or Foundation's `contains`)
/// cost more than the rest of the upstream call's set-up.
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
        let bytes = url.utf8
        let scheme = "http://".utf8
        guard bytes.count >= scheme.count,
              zip(bytes, scheme).enumerated().allSatisfy({ index, pair in (index < 4 ? pair.0 | 0x20 : pair.0) == pair.1 })
        else { return nil }
        let start = bytes.index(bytes.startIndex, offsetBy: scheme.count)
        let authorityEnd = bytes[start...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
            ?? bytes.endIndex
        authority = url[start..<authorityEnd]
        guard start < authorityEnd, !bytes[start..<authorityEnd].contains(UInt8(ascii: "@")) else { return nil }

        var hostRange = start..<authorityEnd
        var port = 80
        if bytes[start] == UInt8(ascii: "[") {
            guard let close = bytes[hostRange].firstIndex(of: UInt8(ascii: "]")) else { return nil }
            let afterClose = bytes.index(after: close)
            hostRange = bytes.index(after: start)..<close
            if afterClose < authorityEnd {
                guard bytes[afterClose] == UInt8(ascii: ":"), let number = Int(url[bytes.index(after: afterClose)..<authorityEnd]) else { return nil }
                port = number
            }
        } else if let colon = bytes[hostRange].lastIndex(of: UInt8(ascii: ":")) {
            guard let number = Int(url[bytes.index(after: colon)..<authorityEnd]) else { return nil }
            port = number
            hostRange = start..<colon
        }
        guard !hostRange.isEmpty, (1...65535).contains(port) else { return nil }
        origin = Origin(host: String(url[hostRange]), port: port)

        let targetEnd = bytes[authorityEnd...].firstIndex(of: UInt8(ascii: "#")) ?? bytes.endIndex
        let target = url[authorityEnd..<targetEnd]
        self.target = authorityEnd < targetEnd && bytes[authorityEnd] == UInt8(ascii: "/") ? String(target) : "/" + target
    }
}
