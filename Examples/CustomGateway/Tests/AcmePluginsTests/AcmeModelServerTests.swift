import Kernel
import KernelTesting
import Plugins
import Testing
@testable import AcmePlugins

extension AcmeGatewayTests {
    /// `acme-model-server`'s config and what it declares; its traffic, through every front door,
    /// is in Tests/Integration/test_custom_gateway.py against the fake provider.
    @Suite struct AcmeModelServerTests {
        static func gateway(_ config: String) async throws -> TestGateway {
            var registry = Builtins.registry()
            registry.register(AcmeModelServer.self)
            return try await TestGateway(manifest: """
                {"providers": {"acme": {"plugin": "acme-model-server", "config": \(config)}},
                 "models": {"m": {"targets": [{"provider": "acme", "model": "acme-upstream"}]}},
                 "pipeline": [{"plugin": "router"}]}
                """, registry: registry)
        }

        @Test func speaksChatCompletionsOnly() async throws {
            let gateway = try await Self.gateway(#"{"base_url": "http://127.0.0.1:9/v1", "tenant": "t"}"#)
            defer { Task { await gateway.shutdown() } }
            let provider = try #require(gateway.generation.providers["acme"])
            #expect(provider.nativeOperations == [.chatCompletions])
        }

        @Test func refusesBadConfig() async throws {
            let cases: [(config: String, message: String)] = [
                (#"{"base_url": "ftp://models/v1", "tenant": "t"}"#, "http:// or https://"),
                (#"{"base_url": "http://models/v1"}"#, "tenant"),
            ]
            for (config, message) in cases {
                do {
                    let gateway = try await Self.gateway(config)
                    await gateway.shutdown()
                    Issue.record("accepted \(config)")
                } catch let errors as ManifestErrors {
                    #expect(errors.description.contains(message), "\(errors.description)")
                    #expect(errors.errors.first?.path.hasPrefix("providers.acme.config") == true, "\(errors.description)")
                }
            }
        }
    }
}
