/// One entry of `mcp_servers`: a tool server reached over Streamable HTTP (`url`), or one the
/// gateway starts itself and talks to over stdin/stdout (`command`).
public struct MCPServerSettings: PluginSettings {
    @Setting("url", "the server's Streamable HTTP endpoint, e.g. http://tools.internal:8000/mcp") public var url: String?
    @Setting("headers", .map(.secret), "headers sent with every request to an HTTP server (credentials: best as secret references)")
    public var headers = StringMap()
    @Setting("command", "a stdio server: the program and its arguments, started and supervised by the gateway")
    public var command: [String]?
    @Setting("env", .map(.secret), "a stdio server's environment on top of PATH, HOME, LANG and TMPDIR") public var env = StringMap()
    @Setting("cwd", "a stdio server's working directory (default: the gateway's)") public var cwd: String?
    @Setting("timeout_s", .number(min: 0.001), "longest wait for the answer to one call") public var timeout = 60.0
    @Setting("max_restart_delay_s", .number(min: 0.1), "a stdio server that keeps exiting is restarted after a delay doubling up to this")
    public var maxRestartDelay = 30.0

    public init() {}
}

/// The MCP part of a checked manifest.
public struct MCPManifest: Sendable {
    public struct Server: Sendable {
        public var name: String
        public var settings: MCPServerSettings
        /// Where the entry sits in the manifest, for errors.
        public var path: String
    }

    /// In document order.
    public var servers: [Server] = []
    /// The secret that seals session ids; `nil`: a random key for this process (sessions then do
    /// not survive a restart or move to another replica).
    public var sessionKey: String?
    /// Between a server's name and a tool's or prompt's name on the aggregated `/mcp`.
    public var separator = "__"

    public init() {}

    public var isEnabled: Bool { !servers.isEmpty }

    static let fields = [
        ConfigField("mcp_servers", .map(MCPServerSettings.configType), default: .object(),
                    "MCP tool servers by name, served together at /mcp and each alone at /mcp/{name}"),
        ConfigField("mcp_session_key", .secret,
                    "seals MCP session ids so that any replica sharing it continues any session; at least 32 characters, best as {\"env\": \"NAME\"}"),
        ConfigField("mcp_name_separator", .string, default: "__", "joins a server's name and a tool's or prompt's name on /mcp"),
    ]

    /// Reads the checked top level; problems the schema cannot see go to `fail`.
    static func read(_ top: JSON, fail: (String, String) -> Void) -> MCPManifest {
        var mcp = MCPManifest()
        mcp.separator = top["mcp_name_separator"]?.string ?? "__"
        mcp.sessionKey = top["mcp_session_key"]?.string
        if mcp.separator.isEmpty || mcp.separator.contains("/") {
            fail("mcp_name_separator", "must be non-empty and contain no \"/\"")
        }
        if let key = mcp.sessionKey, key.utf8.count < 32 {
            fail("mcp_session_key", "needs at least 32 characters (it is the key of the session ids' encryption)")
        }
        for (name, entry) in top["mcp_servers"]?.members ?? [] {
            let path = JSONPath.member("mcp_servers", name)
            if name.isEmpty || name.contains("/") || name.contains(mcp.separator) || name.contains(where: { $0.isWhitespace }) {
                fail(path, "a server's name must be non-empty, without \"/\", spaces or the separator \"\(mcp.separator)\"")
            }
            guard let settings = try? MCPServerSettings.load(entry, path: path) else { continue }
            switch (settings.url, settings.command) {
            case (let url?, nil):
                if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                    fail(JSONPath.member(path, "url"), "expected an http:// or https:// URL")
                }
                if settings.env.pairs.count > 0 || settings.cwd != nil {
                    fail(path, "env and cwd are for stdio servers (command); an HTTP server takes headers")
                }
            case (nil, let command?):
                if command.isEmpty || command[0].isEmpty { fail(JSONPath.member(path, "command"), "needs at least the program") }
                if settings.headers.pairs.count > 0 { fail(path, "headers are for HTTP servers (url); a stdio server takes env") }
            case (nil, nil):
                fail(path, "needs either \"url\" (Streamable HTTP) or \"command\" (stdio)")
            case (.some, .some):
                fail(path, "give either \"url\" or \"command\", not both")
            }
            mcp.servers.append(Server(name: name, settings: settings, path: path))
        }
        return mcp
    }
}
