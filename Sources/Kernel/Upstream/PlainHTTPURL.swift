/// An `http://` URL taken apart for the NIO transport: where to connect and what to ask for.
/// Forms it does not take (user info, another scheme) are left to curl.
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
        guard let schemeEnd = url.utf8.firstIndex(of: UInt8(ascii: ":")),
              url[..<schemeEnd].lowercased() == "http", url[schemeEnd...].hasPrefix("://") else { return nil }
        let rest = url[url.index(schemeEnd, offsetBy: 3)...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        authority = rest[..<authorityEnd]
        guard !authority.isEmpty, !authority.contains("@") else { return nil }

        var host = authority[...]
        var port = 80
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()) else { return nil }
                port = number
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]) else { return nil }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        origin = Origin(host: String(host), port: port)

        var target = rest[authorityEnd...]
        if let fragment = target.firstIndex(of: "#") { target = target[..<fragment] }
        self.target = target.hasPrefix("/") ? String(target) : "/" + target
    }
}
