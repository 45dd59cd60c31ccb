import Foundation
import Kernel
import NIOHTTP1

/// Who may read the status page. It names keys, models, spend and upstream errors, so it needs
/// an admin key unless the manifest says `public: true`: `Authorization: Bearer KEY`, as every
/// operator route takes it, or HTTP Basic with the key as the password, so that a browser can
/// open the page (it asks once, then sends the same credentials with the page's own requests).
struct StatusPageAccess: Sendable {
    let keys: [KeyDigest]
    let isPublic: Bool

    static let realm = #"Basic realm="sluice status", charset="UTF-8""#

    func check(_ headers: HTTPHeaders) throws {
        guard !isPublic else { return }
        guard let presented = headers.bearerToken ?? Self.basicPassword(headers) else {
            throw refusal("The status page needs an admin key: send `Authorization: Bearer KEY`, or any user name with the key as password.",
                          code: "missing_admin_key")
        }
        guard KeyDigest.match(presented, in: keys) != nil else { throw refusal("That key is not an admin key.", code: "invalid_admin_key") }
    }

    private func refusal(_ message: String, code: String) -> GatewayError {
        GatewayError(.unauthorized, type: "authentication_error", message, code: code, headers: ["www-authenticate": Self.realm])
    }

    /// The password of `Authorization: Basic base64(user:password)`.
    static func basicPassword(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization"), value.count > 6, value.prefix(6).lowercased() == "basic " else { return nil }
        guard let decoded = Data(base64Encoded: value.dropFirst(6).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        let password = String(text[text.index(after: colon)...])
        return password.isEmpty ? nil : password
    }
}
