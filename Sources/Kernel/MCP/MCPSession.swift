/// What a client's MCP session is, sealed into its session id (`MCPSessionSeal`): the protocol
/// version agreed with the client, the upstream session of each HTTP server, and who opened it.
public struct MCPSession: Sendable, Equatable {
    /// One HTTP server's side of the session.
    public struct Upstream: Sendable, Equatable {
        /// The server's `Mcp-Session-Id`; `nil` for a server that keeps no sessions.
        public var id: String?
        /// The version that server agreed to, sent back to it as `MCP-Protocol-Version`.
        public var version: String

        public init(id: String?, version: String) {
            self.id = id
            self.version = version
        }
    }

    /// `nil`: every server (`/mcp`); otherwise the one server of `/mcp/{name}`.
    public var scope: String?
    public var version: String
    /// HTTP servers by name; stdio servers are shared by every session and have no entry.
    public var upstream: [String: Upstream]
    /// The caller's name, when an authenticator named one: another caller cannot take the session over.
    public var caller: String?
    /// Seconds since 1970; a random-looking id for the same state each time.
    public var created: Int

    public init(scope: String?, version: String, upstream: [String: Upstream], caller: String?, created: Int) {
        self.scope = scope
        self.version = version
        self.upstream = upstream
        self.caller = caller
        self.created = created
    }

    var json: JSON {
        var members: [(String, JSON)] = [("v", JSON(version)), ("t", JSON(created))]
        if let scope { members.append(("s", JSON(scope))) }
        if let caller { members.append(("c", JSON(caller))) }
        var servers: [(String, JSON)] = []
        for (name, upstream) in upstream.sorted(by: { $0.key < $1.key }) {
            var entry: [(String, JSON)] = [("v", JSON(upstream.version))]
            if let id = upstream.id { entry.append(("i", JSON(id))) }
            servers.append((name, JSON(object: entry)))
        }
        members.append(("u", JSON(object: servers)))
        return JSON(object: members)
    }

    init?(json: JSON) {
        guard let version = json["v"]?.string, let created = json["t"]?.int, let upstream = json["u"], upstream.isObject else { return nil }
        self.version = version
        self.created = created
        scope = json["s"]?.string
        caller = json["c"]?.string
        var servers: [String: Upstream] = [:]
        for (name, entry) in upstream.members {
            guard let version = entry["v"]?.string else { return nil }
            servers[name] = Upstream(id: entry["i"]?.string, version: version)
        }
        self.upstream = servers
    }
}
