import Crypto
import Foundation
import Kernel
import NIOCore
import NIOHTTP1

/// AWS credentials: an access key pair, and the session token that temporary credentials
/// (an assumed role, an instance profile) come with. Never printed.
struct AWSCredentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    var accessKeyID: String
    var secretAccessKey: String
    var sessionToken: String?

    var description: String { "AWSCredentials(redacted)" }
    var debugDescription: String { description }
    var customMirror: Mirror { Mirror(self, children: []) }
}

/// AWS Signature Version 4 for requests whose whole body is in hand: the request is
/// canonicalized, hashed into a string to sign under the day's scope, and signed with a key
/// derived from the secret through the date, region and service.
struct SigV4Signer: Sendable {
    var credentials: AWSCredentials
    var region: String
    var service: String

    /// What signing adds to a request, `authorization` last.
    struct Signed {
        var headers: [(name: String, value: String)]
        var canonicalRequest: String
        var stringToSign: String
        var authorization: String { headers.last!.value }
    }

    /// Signs a request. `path` is the path as it goes on the wire (already percent-encoded),
    /// `query` the raw query without `?`, and `headers` the headers to sign, `host` included;
    /// headers added after signing go unsigned. `x-amz-date` and, with a session token,
    /// `x-amz-security-token` are added and signed; `x-amz-content-sha256` too when
    /// `payloadHeader` is set.
    func sign(method: String, path: String, query: String = "", headers: [(name: String, value: String)],
              body: ByteBuffer?, date: Date, payloadHeader: Bool = true) -> Signed {
        let amzDate = Self.timestamp(date)
        let payloadHash = Hex.encode(body.map { $0.withUnsafeReadableBytes { SHA256.hash(data: $0) } } ?? SHA256.hash(data: [UInt8]()))
        var added: [(name: String, value: String)] = [("x-amz-date", amzDate)]
        if payloadHeader { added.append(("x-amz-content-sha256", payloadHash)) }
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }

        // Lower-case names, values trimmed with inner runs of spaces collapsed, repeated names
        // joined by commas, sorted by name.
        var byName: [String: [String]] = [:]
        for (name, value) in headers + added {
            byName[name.lowercased(), default: []].append(Self.trimmed(value))
        }
        let names = byName.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(byName[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [method.uppercased(), Self.canonicalURI(path), Self.canonicalQuery(query),
                                canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")

        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope,
                            Hex.encode(SHA256.hash(data: Array(canonicalRequest.utf8)))].joined(separator: "\n")
        let signature = Hex.encode(Self.hmac(signingKey(day: day), stringToSign))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signed(headers: added + [("authorization", authorization)], canonicalRequest: canonicalRequest, stringToSign: stringToSign)
    }

    /// The key for one day's signatures: the secret, HMAC-chained through date, region, service.
    func signingKey(day: String) -> SymmetricKey {
        let dateKey = Self.hmac(SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8)), day)
        let regionKey = Self.hmac(SymmetricKey(data: dateKey), region)
        let serviceKey = Self.hmac(SymmetricKey(data: regionKey), service)
        return SymmetricKey(data: Self.hmac(SymmetricKey(data: serviceKey), "aws4_request"))
    }

    private static func hmac(_ key: SymmetricKey, _ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: key))
    }

    /// `YYYYMMDDTHHMMSSZ` in UTC.
    static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { value.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
        return "\(parts.year ?? 1970)\(two(parts.month))\(two(parts.day))T\(two(parts.hour))\(two(parts.minute))\(two(parts.second))Z"
    }

    private static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// The path encoded once more, slashes kept. Services other than S3 sign the path encoded
    /// twice: a model id `a:b` travels as `a%3Ab` and is signed as `a%253Ab`.
    static func canonicalURI(_ path: String) -> String {
        path.isEmpty ? "/" : uriEncode(path, keepingSlash: true)
    }

    /// Parameters sorted by encoded name, then value; each name and value encoded.
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: true).map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (uriEncode(String(parts[0])), parts.count > 1 ? uriEncode(String(parts[1])) : "")
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// AWS's URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when kept) as `%XX`.
    static func uriEncode(_ text: String, keepingSlash: Bool = false) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepingSlash:
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
