import Foundation

/// A client key kept in the state database (`api-key-auth` with `"managed": true`), created and
/// changed through `admin-api` or `sluice keys`. Only the key's SHA-256 is stored; the key itself
/// is shown once, when it is made.
public struct ManagedKey: Sendable, Equatable {
    public var name: String
    public var digest: KeyDigest
    /// After a rotation: the replaced key, accepted until `previousValidUntilMs`.
    public var previousDigest: KeyDigest?
    public var previousValidUntilMs: Int64?
    public var team: String?
    /// Public models the key may use; `["*"]` for all.
    public var models: [String]
    public var expiresAtMs: Int64?
    public var disabled: Bool
    /// Spend cap in USD per the budget plugin's period; `nil`: none of its own.
    public var budgetUSD: Double?
    public var createdAtMs: Int64
    public var updatedAtMs: Int64

    public var allowedModels: Set<String>? { models.contains("*") ? nil : Set(models) }

    /// Whether the key may be used at `nowMs` (not disabled, not expired).
    public func isUsable(atMs nowMs: Int64) -> Bool {
        !disabled && (expiresAtMs.map { nowMs < $0 } ?? true)
    }

    /// As the admin API and `sluice keys` show it: never a digest.
    public var json: JSON {
        var object: [(String, JSON)] = [
            ("name", JSON(name)),
            ("team", team.map { JSON($0) } ?? .null),
            ("models", JSON(array: models.map { JSON($0) })),
            ("expires_at", expiresAtMs.map { JSON(ISO8601.string(ms: $0)) } ?? .null),
            ("disabled", JSON(disabled)),
            ("budget_usd", budgetUSD.map { JSON($0) } ?? .null),
            ("created_at", JSON(ISO8601.string(ms: createdAtMs))),
            ("updated_at", JSON(ISO8601.string(ms: updatedAtMs))),
        ]
        if let until = previousValidUntilMs, previousDigest != nil {
            object.append(("previous_key_valid_until", JSON(ISO8601.string(ms: until))))
        }
        return JSON(object: object)
    }

    /// `json` with the key itself, as a creation or a rotation shows it, that once.
    public func json(showing secret: String) -> JSON {
        var json = json
        json["key"] = JSON(secret)
        return json
    }

    init(row: DatabaseRow) {
        name = row["name"].string ?? ""
        digest = KeyDigest(hex: row["digest"].string ?? "") ?? KeyDigest(of: "")
        previousDigest = row["previous_digest"].string.flatMap { KeyDigest(hex: $0) }
        previousValidUntilMs = row["previous_valid_until_ms"].int.map(Int64.init)
        team = row["team"].string
        models = (row["models"].string ?? "*").split(separator: "\n").map(String.init)
        expiresAtMs = row["expires_at_ms"].int.map(Int64.init)
        disabled = row["disabled"].bool
        budgetUSD = row["budget_usd"].double
        createdAtMs = Int64(row["created_at_ms"].int ?? 0)
        updatedAtMs = Int64(row["updated_at_ms"].int ?? 0)
    }
}

/// A team of managed keys, with an optional budget of its own.
public struct Team: Sendable, Equatable {
    public var name: String
    public var budgetUSD: Double?
    public var createdAtMs: Int64
    public var updatedAtMs: Int64

    public var json: JSON {
        JSON(object: [
            ("name", JSON(name)),
            ("budget_usd", budgetUSD.map { JSON($0) } ?? .null),
            ("created_at", JSON(ISO8601.string(ms: createdAtMs))),
            ("updated_at", JSON(ISO8601.string(ms: updatedAtMs))),
        ])
    }

    init(row: DatabaseRow) {
        name = row["name"].string ?? ""
        budgetUSD = row["budget_usd"].double
        createdAtMs = Int64(row["created_at_ms"].int ?? 0)
        updatedAtMs = Int64(row["updated_at_ms"].int ?? 0)
    }
}

/// ISO 8601 times as the admin API reads and writes them (UTC, `2025-06-01T00:00:00Z`; a
/// date alone means its midnight UTC).
public enum ISO8601 {
    public static func string(ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    public static func milliseconds(_ text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate]] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return WallClock.milliseconds(date) }
        }
        return nil
    }
}
