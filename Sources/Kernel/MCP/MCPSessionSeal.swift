import Crypto
import Foundation

/// Seals a session's state into the session id a client gets, and opens it again: any replica
/// that has the same key continues any session, with no state shared between replicas. The seal
/// is ChaCha20-Poly1305, so a client can neither read the upstream sessions inside nor change
/// one byte without the id being refused.
public struct MCPSessionSeal: Sendable {
    private let key: SymmetricKey
    /// Bound into every seal, so an id sealed for another purpose (or format) never opens here.
    private static let associatedData = Data("sluice mcp session v1".utf8)

    /// A key derived from the manifest's secret (HKDF-SHA256), never the secret itself.
    public init(secret: String) {
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: Data(secret.utf8)),
                                      info: Data("sluice mcp session id".utf8), outputByteCount: 32)
    }

    /// A random key: sessions live as long as this process.
    public init() { key = SymmetricKey(size: .bits256) }

    /// The session sealed into an id: base64url, visible ASCII only, as the transport requires.
    public func seal(_ session: MCPSession) -> String {
        let plaintext = Data(session.json.encoded())
        // A fresh random nonce per seal: 96 bits make a repeat negligible at any rate of sessions.
        guard let box = try? ChaChaPoly.seal(plaintext, using: key, authenticating: Self.associatedData) else {
            preconditionFailure("ChaChaPoly.seal failed with a valid key")
        }
        return Base64URL.encode(box.combined)
    }

    /// The session, or `nil` for an id this key did not seal (forged, altered, or from another key).
    public func open(_ id: String) -> MCPSession? {
        guard id.utf8.count <= 16_384, let data = Self.data(base64URL: id),
              let box = try? ChaChaPoly.SealedBox(combined: data),
              let plaintext = try? ChaChaPoly.open(box, using: key, authenticating: Self.associatedData),
              let json = try? JSON.parse(plaintext) else { return nil }
        return MCPSession(json: json)
    }

    /// The bytes of a session id: base64url in its one canonical spelling, since the spare bits
    /// of a last character (or padding) would otherwise let several ids name one session.
    static func data(base64URL text: String) -> Data? {
        guard let data = Base64URL.decode(text), Base64URL.encode(data) == text else { return nil }
        return data
    }
}
