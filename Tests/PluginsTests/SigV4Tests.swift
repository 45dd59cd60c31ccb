import Foundation
import Kernel
import NIOCore
import Testing
@testable import Plugins

/// AWS Signature Version 4 against AWS's published vectors (the aws-sig-v4-test-suite cases
/// and the signing-key example), and against botocore for a Bedrock request (the value
/// `test_bedrock.py` recomputes with botocore's `SigV4Auth`).
@Suite struct SigV4Tests {
    /// The suite's credentials, region, service and moment.
    static let suite = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE",
                                                               secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                   region: "us-east-1", service: "service")
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z

    static func suiteSignature(_ method: String, _ path: String, query: String = "", headers: [(name: String, value: String)] = [],
                               body: String? = nil, signer: SigV4Signer = suite) -> String {
        signer.sign(method: method, path: path, query: query, headers: [("Host", "example.amazonaws.com")] + headers,
                    body: body.map { ByteBuffer(string: $0) }, date: suiteDate, payloadHeader: false).authorization
    }

    static func expected(_ signedHeaders: String, _ signature: String) -> String {
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    @Test func timestamps() {
        #expect(SigV4Signer.timestamp(Self.suiteDate) == "20150830T123600Z")
        #expect(SigV4Signer.timestamp(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
    }

    @Test func getVanilla() {
        #expect(Self.suiteSignature("GET", "/") == Self.expected("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"))
        // get-vanilla-empty-query-key's sibling, get-vanilla-query: an empty query signs the same.
        #expect(Self.suiteSignature("GET", "/", query: "") == Self.expected("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"))
    }

    @Test func postVanilla() {
        #expect(Self.suiteSignature("POST", "/") == Self.expected("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"))
    }

    @Test func queryParametersAreSorted() {
        #expect(Self.suiteSignature("GET", "/", query: "Param2=value2&Param1=value1")
                == Self.expected("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"))
    }

    @Test func headerValuesAreTrimmed() {
        let headers = [(name: "My-Header1", value: " value1"), (name: "My-Header2", value: #" "a   b   c""#)]
        #expect(Self.suiteSignature("GET", "/", headers: headers)
                == Self.expected("host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"))
    }

    @Test func formBody() {
        #expect(Self.suiteSignature("POST", "/", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "Param1=value1")
                == Self.expected("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"))
    }

    @Test func sessionTokenIsSigned() {
        var signer = Self.suite
        signer.credentials.sessionToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
        let signed = signer.sign(method: "POST", path: "/", headers: [("Host", "example.amazonaws.com")], body: nil,
                                 date: Self.suiteDate, payloadHeader: false)
        #expect(signed.authorization == Self.expected("host;x-amz-date;x-amz-security-token",
                                                      "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"))
        #expect(signed.headers.contains { $0.name == "x-amz-security-token" && $0.value == signer.credentials.sessionToken })
    }

    @Test func signingKeyDerivation() {
        // AWS's worked example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let signer = SigV4Signer(credentials: Self.suite.credentials, region: "us-east-1", service: "iam")
        let key = signer.signingKey(day: "20120215").withUnsafeBytes { Array($0) }
        #expect(Hex.encode(key) == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d")
    }

    @Test func bedrockConverseMatchesBotocore() {
        let signer = SigV4Signer(credentials: Self.suite.credentials, region: "us-east-1", service: "bedrock")
        let body = #"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#
        let path = BedrockEndpoint.modelPath("anthropic.claude-3-haiku-20240307-v1:0", "converse")
        #expect(path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
        let signed = signer.sign(method: "POST", path: path,
                                 headers: [("host", "bedrock-runtime.us-east-1.amazonaws.com"), ("content-type", "application/json")],
                                 body: ByteBuffer(string: body), date: Date(timeIntervalSince1970: 1_714_558_272))  // 20240501T101112Z
        #expect(signed.headers.first { $0.name == "x-amz-content-sha256" }?.value
                == "c3335e07d6e89650bf94cb98664be69f8774dbc3198df221f113db0a59ea14f0")
        #expect(signed.authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/bedrock/aws4_request, "
                + "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "
                + "Signature=7c1fb975db2b4f45b0f5d60340461ab061fc2d46db567366ccbf9d7effbec977")
        // Services other than S3 sign the path encoded twice.
        #expect(signed.canonicalRequest.split(separator: "\n")[1] == "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse")
    }

    @Test func anARNIsOnePathSegment() {
        let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
        let path = BedrockEndpoint.modelPath(arn, "converse-stream")
        #expect(path == "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
        #expect(SigV4Signer.canonicalURI(path).hasPrefix("/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus."))
    }

    @Test func endpointHosts() {
        #expect(BedrockEndpoint(baseURL: "https://bedrock-runtime.eu-west-1.amazonaws.com").host == "bedrock-runtime.eu-west-1.amazonaws.com")
        #expect(BedrockEndpoint(baseURL: "https://Bedrock.example.com:443/proxy").host == "bedrock.example.com")
        #expect(BedrockEndpoint(baseURL: "https://bedrock.example.com:443/proxy").pathPrefix == "/proxy")
        #expect(BedrockEndpoint(baseURL: "http://127.0.0.1:8080").host == "127.0.0.1:8080")
        #expect(BedrockEndpoint(baseURL: "http://127.0.0.1:8080").pathPrefix == "")
    }

    @Test func credentialsDoNotPrint() {
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "top-secret", sessionToken: "token")
        #expect(!"\(credentials)".contains("top-secret"))
        #expect(!String(reflecting: credentials).contains("top-secret"))
    }
}
