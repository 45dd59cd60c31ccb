import Crypto
import NIOHTTP1

/// A key as the gateway holds it: its SHA-256, never the key itself.
public struct KeyDigest: Sendable, Equatable {
    public let bytes: [UInt8]

    public init(of key: String) {
        var hasher = SHA256(), key = key
        key.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }  // the key's bytes, not a copy
        bytes = hasher.finalize().withUnsafeBytes { Array($0) }  // a copy of 32 bytes, not a walk over the digest's sequence
    }

    /// From 64 hexadecimal digits (the output of `sha256sum`); `nil` for anything else.
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex), bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// The index of the digest that `presented` hashes to. Every digest is compared in full,
    /// without stopping early, so timing tells nothing about which key (or how much of one) matched.
    public static func match(_ presented: String, in digests: [KeyDigest]) -> Int? {
        let digest = KeyDigest(of: presented).bytes
        var match: Int?
        for (index, candidate) in digests.enumerated() {
            var difference: UInt8 = 0
            for i in 0..<32 { difference |= digest[i] ^ candidate.bytes[i] }
            if difference == 0 { match = index }
        }
        return match
    }
}

extension HTTPHeaders {
    /// Headers a client credential may arrive in; never forwarded upstream.
    private static let credentials: [StaticString] = ["authorization", "x-api-key", "api-key"]

    /// The headers without the client's credentials, in one pass: `remove(name:)` once per name
    /// would copy them first, then walk them once for each name.
    public var withoutCredentials: HTTPHeaders {
        let credentials = Self.credentials  // read once: a static is behind a once-check on every access
        var kept: [(String, String)] = []
        kept.reserveCapacity(count)
        for (name, value) in self where !credentials.contains(where: { HTTPSyntax.isNamed(name, $0) }) { kept.append((name, value)) }
        return HTTPHeaders(kept)
    }

    /// The key a client presented: `Authorization: Bearer KEY` (the scheme in any case), else
    /// `x-api-key`, else `api-key`.
    public var presentedKey: String? {
        if let authorization = first(name: "authorization"), let key = Self.bearerToken(authorization) { return key }
        for name in ["x-api-key", "api-key"] {
            if let key = first(name: name), !key.isEmpty { return key }
        }
        return nil
    }

    /// The token of `Authorization: Bearer TOKEN`.
    public var bearerToken: String? { first(name: "authorization").flatMap(Self.bearerToken) }

    /// `TOKEN` from `Bearer TOKEN`, without Foundation on the hot path.
    static func bearerToken(_ value: String) -> String? {
        var value = value
        return value.withUTF8 { bytes -> String? in
            guard bytes.count > 7, bytes[6] == UInt8(ascii: " "),
                  HTTPSyntax.isLowercase(UnsafeBufferPointer(rebasing: bytes[..<6]), in: "bearer") else { return nil }
            var start = 7, end = bytes.count
            while start < end, bytes[start] == UInt8(ascii: " ") { start += 1 }
            while end > start, bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
            return start < end ? String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) : nil
        }
    }
}

/// Every key this manifest accepts (client keys, admin keys), as digests: what a log must never
/// show, under whatever header name a client sent it.
public struct KnownCredentials: Sendable {
    private let digests: [KeyDigest]

    public init(_ digests: [KeyDigest]) { self.digests = digests }
    public static let none = KnownCredentials([])

    /// Whether `value`, or its last word (`Bearer KEY`, `Token KEY`), is one of the keys.
    public func contains(_ value: String) -> Bool {
        guard !digests.isEmpty else { return false }
        let lastWord = value.split(separator: " ").last.map(String.init)
        return KeyDigest.match(value, in: digests) != nil || (lastWord.map { KeyDigest.match($0, in: digests) != nil } ?? false)
    }
}
