import NIOHTTP1

extension HTTPHeaders {
    /// Adds a call's extra headers (middlewares' `upstreamHeaders`, trace context) except those
    /// the provider already set: credentials, content type and request id stay the provider's.
    mutating func addCallHeaders(_ extra: HTTPHeaders) {
        let own = self
        for (name, value) in extra where !own.contains(name: name) { add(name: name, value: value) }
    }
}
