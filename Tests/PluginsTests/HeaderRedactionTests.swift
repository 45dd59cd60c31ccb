import Kernel
import Testing
@testable import Plugins

@Suite struct HeaderRedactionTests {
    @Test(arguments: [("x-auth-token", "abc"), ("authorisation", "Bearer short"), ("proxy-authorization", "Basic x"),
                      ("x-api-key", "k"), ("cookie", "a=b"), ("x-session-id", "1"), ("x-custom", "tok-abcdefghijklmnopqrstuvwx1234"),
                      ("x-forwarded-jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2ln"),
                      ("x-note", "see eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2ln")])
    func hidesCredentialsByNameOrShape(_ name: String, _ value: String) {
        #expect(HeaderRedaction.shown(name, value) == "[redacted]")
    }

    @Test(arguments: [("user-agent", "OpenAI/Python 1.50.0"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                      ("x-obs-note", "kept as is"), ("x-request-id", "3f0c8c2e-1d7b-4b7f-9a57-2c51f1a5e8d1"), ("content-type", "application/json")])
    func showsOrdinaryHeaders(_ name: String, _ value: String) {
        #expect(HeaderRedaction.shown(name, value) == value)
    }

    @Test func hidesTheManifestsKeysUnderAnyName() {
        let keys = KnownCredentials([KeyDigest(of: "short-key-1")])
        #expect(HeaderRedaction.shown("x-note", "short-key-1", knownKeys: keys) == "[redacted]")
        #expect(HeaderRedaction.shown("x-note", "Token short-key-1", knownKeys: keys) == "[redacted]")
        #expect(HeaderRedaction.shown("x-note", "short-key-2", knownKeys: keys) == "short-key-2")
    }
}
