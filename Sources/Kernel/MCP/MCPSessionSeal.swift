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

    /// URL-safe base64 without padding: visible ASCII only, as the transport requires of session ids.
    public func seal(_ session: MCPSession) -> String {
        let plaintext = Data(session.json.encoded())
        // A fresh random nonce per seal: 96 bits make a repeat negligible at any rate of sessions.
        guard let box = try? ChaChaPoly.seal(plaintext, using: key, authenticating: Self.associatedData) else {
            preconditionFailure("ChaChaPoly.seal failed with a valid key")
        }
        return Self.base64URL(box.combined)
    }

    /// The session, or `nil` for an id this key did not seal (forged, altered, or from another key).
    public func open(_ id: String) -> MCPSession? {
        guard id.utf8.count <= 16_384, let data = Self.data(base64URL: id),
              let box = try? ChaChaPoly.SealedBox(combined: data),
              let plaintext = try? ChaChaPoly.open(box, using: key, authenticating: Self.associatedData),
              let json = try? JSON.parse(plaintext) else { return nil }
        return MCPSession(json: json)
    }

    // Base64 spelt for URLs: `-` and `_` for `+` and `/`, no padding. Byte by byte, as the
    // session id is opened on every MCP request.
    static func base64URL(_ data: Data) -> String {
        var bytes = Array(data.base64EncodedData())
        while bytes.last == UInt8(ascii: "=") { bytes.removeLast() }
        for index in bytes.indices {
            if bytes[index] == UInt8(ascii: "+") { bytes[index] = UInt8(ascii: "-") } else if bytes[index] == UInt8(ascii: "/") { bytes[index] = UInt8(ascii: "_") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func data(base64URL text: String) -> Data? {
        guard text.utf8.allSatisfy({ $0.isBase64URL }) else { return nil }
        var base64 = Data(text.utf8.map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "+") : $0 == UInt8(ascii: "_") ? UInt8(ascii: "/") : $0 })
        base64.append(contentsOf: repeatElement(UInt8(ascii: "="), count: (4 - base64.count % 4) % 4))
        // Only the canonical spelling: the spare bits of a last character would otherwise let
        // several ids name one session.
        guard let data = Data(base64Encoded: base64), base64URL(data) == text else { return nil }
        return data
    }
}

extension UInt8 {
    fileprivate var isBase64URL: Bool {
        (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "z")) || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z"))
            || (self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9")) || self == UInt8(ascii: "-") || self == UInt8(ascii: "_")
    }
}
