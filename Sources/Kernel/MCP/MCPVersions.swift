/// The protocol versions the gateway speaks with clients (all with the initialize handshake and
/// Streamable HTTP; what differs between them the gateway forwards without looking).
public enum MCPVersions {
    public static let supported = ["2025-03-26", "2025-06-18", "2025-11-25"]
    public static let latest = "2025-11-25"
    /// What a client that sent no `MCP-Protocol-Version` header speaks, as the transport says.
    public static let assumed = "2025-03-26"

    /// The version a client asked for when the gateway speaks it, otherwise the latest (the
    /// client then decides whether it can go on).
    public static func negotiate(_ requested: String?) -> String {
        requested.flatMap { supported.contains($0) ? $0 : nil } ?? latest
    }
}

/// What the pipeline's end needs to know about one MCP exchange, besides the request itself.
struct MCPExchange: RequestStorageKey {
    typealias Value = Exchange

    struct Exchange: Sendable {
        /// `nil` for `/mcp`, a server's name for `/mcp/{name}`.
        var scope: String?
        /// The JSON-RPC message of a POST.
        var message: JSON?
        var sessionID: String?
        var isDraining: @Sendable () -> Bool
    }
}
