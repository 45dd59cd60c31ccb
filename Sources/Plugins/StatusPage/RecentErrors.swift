import Foundation
import Kernel
import NIOConcurrencyHelpers

/// The last failed requests (status, model, provider, message), newest first, for the page.
/// A message is the error the client was sent, with anything shaped like a credential or equal
/// to one of the manifest's keys replaced: an upstream's message may quote a key. Never a body.
final class RecentErrors: Sendable {
    static let shared = RecentErrors()

    struct Entry: Sendable {
        var at: Date
        var status: UInt
        var model: String
        var provider: String
        var message: String
    }

    let capacity: Int
    static let maxMessageCharacters = 300
    private let entries = NIOLockedValueBox<[Entry]>([])

    init(capacity: Int = 50) { self.capacity = capacity }

    func record(status: UInt, model: String, provider: String, message: String, credentials: KnownCredentials, at: Date = Date()) {
        let entry = Entry(at: at, status: status, model: model, provider: provider, message: Self.scrubbed(message, credentials: credentials))
        entries.withLockedValue {
            $0.insert(entry, at: 0)
            if $0.count > capacity { $0.removeLast($0.count - capacity) }
        }
    }

    static func scrubbed(_ message: String, credentials: KnownCredentials) -> String {
        let words = message.split(separator: " ", omittingEmptySubsequences: false).map { word in
            let text = String(word)
            return HeaderRedaction.looksLikeCredential(text) || credentials.contains(text) ? HeaderRedaction.redacted : text
        }
        let joined = words.joined(separator: " ")
        return joined.count > maxMessageCharacters ? String(joined.prefix(maxMessageCharacters)) + "…" : joined
    }

    var json: JSON {
        JSON(array: entries.withLockedValue { $0 }.map { entry in
            JSON(object: [("at", JSON(StatusReport.timestamp(entry.at))), ("status", JSON(Int(entry.status))), ("model", JSON(entry.model)),
                          ("provider", JSON(entry.provider)), ("message", JSON(entry.message))])
        })
    }
}
