import Kernel

/// Which request header values the access log may show. A credential can arrive under any
/// name (`X-Auth-Token`, a misspelt `Authorisation`, a custom header), so a value is hidden when
/// its name says it may hold one, when it is one of the manifest's keys, or when it is shaped
/// like one; only the headers known to carry no secret (trace context, content negotiation) are
/// shown whatever their shape.
enum HeaderRedaction {
    static let redacted = "[redacted]"

    /// Name parts of headers that carry credentials.
    private static let sensitiveNameParts = ["auth", "key", "token", "secret", "passw", "cookie", "session", "credential",
                                             "signature", "jwt", "bearer"]
    /// Headers shown as they are.
    private static let plainNames: Set<String> = ["traceparent", "tracestate", "x-request-id", "user-agent", "content-type",
                                                  "content-length", "accept", "accept-encoding", "host", "connection",
                                                  "anthropic-version", "anthropic-beta", "openai-organization", "openai-project"]

    /// `value` as the log shows it; `name` is lowercased.
    static func shown(_ name: String, _ value: String, knownKeys: KnownCredentials = .none) -> String {
        if sensitiveNameParts.contains(where: name.contains) { return redacted }
        if plainNames.contains(name) { return value }
        return looksLikeCredential(value) || knownKeys.contains(value) ? redacted : value
    }

    /// A run of 20 or more letters, digits and `_+/=` holding both a letter and a digit (an API
    /// key, a base64 secret), or a JWT's three dot-separated parts.
    static func looksLikeCredential(_ value: String) -> Bool {
        var run = 0, letters = false, digits = false
        for byte in value.utf8 {
            let isLetter = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
            let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            if isLetter || isDigit || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=") {
                run += 1
                letters = letters || isLetter
                digits = digits || isDigit
                if run >= 20, letters, digits { return true }
            } else {
                run = 0
                letters = false
                digits = false
            }
        }
        let parts = value.split(separator: ".")
        return parts.count == 3 && parts[0].hasPrefix("eyJ") && parts.allSatisfy { $0.count >= 8 }
    }
}
