/// The gateway's state database, named once at the top of the manifest (`"database": {"url": …}`):
/// SQLite embedded in the process, or PostgreSQL shared by replicas. Plugins reach it through
/// `PluginContext.database`. SQL is written once for both: `?` marks a bound parameter (the
/// PostgreSQL side numbers them), and only types both understand are used (`BIGINT`, `TEXT`,
/// `DOUBLE PRECISION`; booleans as 0/1, times as Unix milliseconds).
public protocol StateDatabase: AnyObject, Sendable {
    var kind: DatabaseKind { get }
    /// Runs one statement; the rows it returns, if any.
    @discardableResult
    func query(_ sql: String, _ parameters: [DatabaseValue]) async throws -> [DatabaseRow]
    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    func transaction<Result: Sendable>(_ body: @Sendable (any DatabaseSession) async throws -> Result) async throws -> Result
    /// Closes connections (and, for PostgreSQL, stops the client's background task). Once, after the drain.
    func close() async
}

/// What a transaction runs its statements on.
public protocol DatabaseSession: Sendable {
    @discardableResult
    func query(_ sql: String, _ parameters: [DatabaseValue]) async throws -> [DatabaseRow]
}

extension StateDatabase {
    @discardableResult
    public func query(_ sql: String, _ parameters: DatabaseValue...) async throws -> [DatabaseRow] {
        try await query(sql, parameters)
    }
}

extension DatabaseSession {
    @discardableResult
    public func query(_ sql: String, _ parameters: DatabaseValue...) async throws -> [DatabaseRow] {
        try await query(sql, parameters)
    }
}

public enum DatabaseKind: String, Sendable {
    case sqlite, postgres
}

/// A bound parameter or a column's value.
public enum DatabaseValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case integer(Int64)
    case double(Double)
    case text(String)

    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int?) { self = value.map { .integer(Int64($0)) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
    public init(_ value: Double?) { self = value.map { .double($0) } ?? .null }
    public init(_ value: Bool) { self = .integer(value ? 1 : 0) }

    public var int: Int? {
        switch self {
        case .integer(let value): Int(value)
        case .double(let value): value.isFinite && abs(value) < 9e18 ? Int(value) : nil
        case .text(let text): Int(text)
        case .null: nil
        }
    }
    public var double: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .double(let value): value
        case .text(let text): Double(text)
        case .null: nil
        }
    }
    public var string: String? {
        switch self {
        case .text(let text): text
        case .integer(let value): String(value)
        case .double(let value): String(value)
        case .null: nil
        }
    }
    public var bool: Bool { int.map { $0 != 0 } ?? false }
    public var isNull: Bool { self == .null }

    public var description: String { string ?? "NULL" }
}

/// One row of a result: its values by column name.
public struct DatabaseRow: Sendable {
    public let columns: [String]
    public let values: [DatabaseValue]

    public init(columns: [String], values: [DatabaseValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(_ column: String) -> DatabaseValue {
        guard let index = columns.firstIndex(of: column) else { return .null }
        return values[index]
    }
}

/// A database failure, worded for admins: never the URL's password.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
