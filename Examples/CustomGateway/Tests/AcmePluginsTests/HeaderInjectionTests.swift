import Kernel
import KernelTesting
import NIOHTTP1
import Testing
@testable import AcmePlugins

extension AcmeGatewayTests {
    @Suite struct HeaderInjectionTests {
        static let pipeline = """
            [{"plugin": "api-key-auth", "config": {"keys": [{"name": "team-a", "key": "key-a"}]}},
             {"plugin": "inject-headers", "config": {
                "upstream": {"X-Acme-Team": "team-{key_name}", "x-acme-model": "{model}", "authorization": "Bearer stolen"},
                "response": {"x-acme-request": "req {request_id}"}}},
             {"plugin": "router", "config": {"retries": 0}}]
            """

        @Test func addsHeadersUpstreamAndToAnswers() async throws {
            let gateway = try await AcmeGatewayTests.gateway(pipeline: Self.pipeline)
            defer { Task { await gateway.shutdown() } }

            let answer = try await gateway.chat(model: "m", "hi", headers: ["authorization": "Bearer key-a", "x-request-id": "r-1"])
            #expect(answer.status == .ok)
            #expect(answer.headers.first(name: "x-acme-request") == "req r-1")
            let call = try #require(gateway.calls.last)
            #expect(call.headers.first(name: "x-acme-team") == "team-team-a")
            #expect(call.headers.first(name: "x-acme-model") == "m")

            // Refusals carry the response headers too.
            let refused = try await gateway.chat(model: "nope", "hi", headers: ["authorization": "Bearer key-a", "x-request-id": "r-2"])
            #expect(refused.status == .notFound)
            #expect(refused.headers.first(name: "x-acme-request") == "req r-2")
        }

        @Test func clientTextCannotWriteHeaders() async throws {
            let template = try HeaderTemplate("{model}")
            #expect(HeaderTemplate.printable("m\r\nx-evil: 1") == "mx-evil: 1")
            #expect(template.parts == [.model])
        }

        @Test func refusesBadConfig() async throws {
            let cases: [(config: String, message: String)] = [
                (#"{"upstream": {"bad name": "x"}}"#, "not a valid header name"),
                (#"{"response": {"x-a": "{tenant}"}}"#, "unknown placeholder {tenant}"),
                (#"{"response": {"x-a": "open {model"}}"#, "without"),
                (#"{}"#, "at least one header"),
            ]
            for (config, message) in cases {
                do {
                    let gateway = try await AcmeGatewayTests.gateway(pipeline: """
                        [{"plugin": "inject-headers", "config": \(config)}, {"plugin": "router"}]
                        """)
                    await gateway.shutdown()
                    Issue.record("accepted \(config)")
                } catch let errors as ManifestErrors {
                    #expect(errors.errors.count == 1)
                    #expect(errors.description.contains(message), "\(errors.description)")
                    #expect(errors.errors.first?.path.hasPrefix("pipeline[0].config") == true)
                }
            }
        }
    }
}
