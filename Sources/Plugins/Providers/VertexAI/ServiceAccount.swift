import _CryptoExtras
import Foundation
import Kernel

/// A Google service account's key file, and the signed assertion (an RS256 JWT) it trades for
/// an access token at its own `token_uri`.
struct ServiceAccount: Sendable {
    static let scope = "https://www.googleapis.com/auth/cloud-platform"

    let email: String
    let tokenURI: String
    let keyID: String?
    let key: _RSA.Signing.PrivateKey

    /// Why a key file is refused; never quotes the file.
    struct Invalid: Error { let reason: String }

    init(json text: String) throws(Invalid) {
        guard let json = try? JSON.parse(text), json.isObject else { throw Invalid(reason: "expected a service account key file (JSON)") }
        guard let email = json["client_email"]?.string, let pem = json["private_key"]?.string else {
            throw Invalid(reason: "expected a service account key file with client_email and private_key")
        }
        let tokenURI = json["token_uri"]?.string ?? "https://oauth2.googleapis.com/token"
        guard tokenURI.hasPrefix("https://") || tokenURI.hasPrefix("http://") else {
            throw Invalid(reason: "the key file's token_uri is not an http(s) URL")
        }
        do { key = try _RSA.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw Invalid(reason: "the key file's private_key is not an RSA private key in PEM form")
        }
        self.email = email
        self.tokenURI = tokenURI
        keyID = json["private_key_id"]?.string
    }

    /// The JWT to exchange for an access token, valid for an hour from `now`.
    func assertion(now: Date = Date()) throws -> String {
        let issued = Int(now.timeIntervalSince1970)
        var header: JSON = ["alg": "RS256", "typ": "JWT"]
        if let keyID { header["kid"] = JSON(keyID) }
        let claims: JSON = ["iss": JSON(email), "scope": JSON(Self.scope), "aud": JSON(tokenURI),
                            "iat": JSON(issued), "exp": JSON(issued + 3600)]
        let signed = Base64URL.encode(Data(header.encoded())) + "." + Base64URL.encode(Data(claims.encoded()))
        let signature = try key.signature(for: Data(signed.utf8), padding: .insecurePKCS1v1_5)
        return signed + "." + Base64URL.encode(signature.rawRepresentation)
    }
}
