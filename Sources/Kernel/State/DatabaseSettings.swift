import Foundation

/// The manifest's `database` section: where the gateway keeps state that must outlive a
/// process or be shared by replicas (managed keys, teams, the spend ledger).
public struct DatabaseSettings: PluginSettings {
    @Setting("url", .secret, required: true,
             "sqlite:PATH (embedded; a relative path from the working directory) or postgres://user:password@host:port/database (shared by replicas); best as {\"env\": \"NAME\"} when it holds a password")
    public var url = ""
    @Setting("max_connections", .positiveInteger, "PostgreSQL: connections the pool opens at most") public var maxConnections = 8

    public init() {}
}

/// A parsed database URL. Its `description` never shows the password.
public enum DatabaseURL: Sendable, CustomStringConvertible, Equatable {
    case sqlite(path: String)
    case postgres(host: String, port: Int, user: String, password: String?, database: String, requireTLS: Bool)

    public init?(_ text: String) {
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
            return
        }
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else { return nil }
        let rest = text[text.range(of: "://")!.upperBound...]
        let (beforeQuery, query) = rest.firstIndex(of: "?").map { (rest[..<$0], rest[rest.index(after: $0)...]) } ?? (rest, "")
        guard let slash = beforeQuery.firstIndex(of: "/") else { return nil }
        let authority = beforeQuery[..<slash]
        let database = Self.percentDecoded(beforeQuery[beforeQuery.index(after: slash)...])
        var user = "postgres", password: String?, hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = Self.percentDecoded(credentials[..<colon])
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else {
                user = Self.percentDecoded(credentials)
            }
        }
        var host = String(hostPort), port = 5432
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            guard let parsed = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
            host = String(hostPort[..<colon])
        }
        host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty, !database.isEmpty, !user.isEmpty else { return nil }
        let requireTLS = query.split(separator: "&").contains { $0 == "sslmode=require" || $0 == "sslmode=verify-full" }
        self = .postgres(host: host, port: port, user: user, password: password, database: database, requireTLS: requireTLS)
    }

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let host, let port, let user, _, let database, _): "postgres://\(user)@\(host):\(port)/\(database)"
        }
    }

    private static func percentDecoded(_ text: Substring) -> String {
        String(text).removingPercentEncoding ?? String(text)
    }
}
