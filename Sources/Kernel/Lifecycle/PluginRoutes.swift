/// The routes a generation's plugins add (`GET /metrics`, `/admin/*`), looked up by the bytes of a
/// request's path. Every request passes here before the API's own paths, so the look-up builds
/// no key, hashes nothing and compares no `Character`s: a key made and hashed for a table, and a
/// prefix compared as characters, each cost more than all of the comparisons.
struct PluginRoutes: Sendable {
    /// Exact paths; for the same method and path, the plugin built later.
    private let exact: [(path: [UInt8], route: PluginRoute)]
    /// Routes for every path under a prefix (`/admin/*` matches below `/admin/`), longest prefix
    /// first; among equal prefixes the plugin built later comes first, as it wins for exact routes.
    private let prefixed: [(prefix: [UInt8], route: PluginRoute)]

    init(_ routes: [PluginRoute]) {
        var exact: [(path: [UInt8], route: PluginRoute)] = []
        var prefixed: [(prefix: [UInt8], route: PluginRoute)] = []
        for route in routes {
            if let prefix = route.pathPrefix {
                prefixed.append((Array(prefix.utf8), route))
            } else {
                let path = Array(route.path.utf8)
                exact.removeAll { $0.route.method == route.method && $0.path == path }
                exact.append((path, route))
            }
        }
        self.exact = exact
        self.prefixed = prefixed.reversed().enumerated()
            .sorted { ($0.element.prefix.count, -$0.offset) > ($1.element.prefix.count, -$1.offset) }.map(\.element)
    }

    /// An exact route, else the longest prefix that matches.
    func route(method: String, path: Substring) -> PluginRoute? {
        if exact.isEmpty && prefixed.isEmpty { return nil }
        var path = path
        return path.withUTF8 { path in
            let path = UnsafeRawBufferPointer(path)
            if let entry = exact.first(where: { $0.route.method == method && $0.path.withUnsafeBytes { ByteWord.equal(path, $0) } }) {
                return entry.route
            }
            return prefixed.first { entry in
                entry.route.method == method && path.count >= entry.prefix.count
                    && entry.prefix.withUnsafeBytes { ByteWord.equal(UnsafeRawBufferPointer(rebasing: path[..<$0.count]), $0) }
            }?.route
        }
    }
}
