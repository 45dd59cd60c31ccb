/// What the plugins that report on requests (access log, metrics, tracing, rate limits) learn
/// about one MCP call: set by the front door from the JSON-RPC message, completed by the gateway.
public struct MCPCallFacts: Sendable {
    /// The JSON-RPC method; `GET` for the server-to-client stream, `DELETE` for a session's end.
    public var method: String
    /// The server the call went to; `nil` for one answered by the gateway or sent to all.
    public var server: String?
    /// The tool or prompt asked for, as the client named it.
    public var name: String?
    /// Whether a server listed `name`: only then is it fit for a metric label (clients may
    /// send any name).
    public var isKnownName = false
    /// `ok`, `error` (the server's JSON-RPC error), `denied` (the caller's allowlist),
    /// `unavailable` (the server could not be reached), `timeout`, `invalid`, `unknown` (no such
    /// server or tool).
    public var outcome: String?

    public init(method: String, server: String? = nil, name: String? = nil) {
        self.method = method
        self.server = server
        self.name = name
    }

    /// The tool of a `tools/call`.
    public var tool: String? { method == "tools/call" ? name : nil }
}
