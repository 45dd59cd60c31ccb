import Foundation
import Kernel
import Plugins
import KernelTesting
import Testing

/// `ca_file` (ProviderConnection): every provider takes it, and a bundle the gateway cannot read
/// is refused at load with the setting's JSON path, not found by the first TLS handshake. That
/// curl then trusts that bundle is shown by the integration suite's TLS fake provider
/// (Tests/Integration, `https_fake`), whose test CA only `ca_file` makes trusted.
@Suite struct ProviderCAFileTests {
    /// One provider `up` of `plugin` with `config` plus `ca_file`, serving model `m`.
    static func manifest(_ plugin: String, _ config: String, caFile: String) -> String {
        let path = String(decoding: try! JSONSerialization.data(withJSONObject: caFile, options: .fragmentsAllowed), as: UTF8.self)
        return """
            {"providers": {"up": {"plugin": "\(plugin)", "config": {\(config), "ca_file": \(path)}}},
             "models": {"m": {"targets": [{"provider": "up", "model": "up-m"}]}},
             "pipeline": [{"plugin": "router", "config": {"retries": 0}}]}
            """
    }

    /// Each provider plugin with a config that loads. The addresses need no name lookup: a
    /// built gateway's health probes call them at once, and curl's shutdown waits for a lookup
    /// of a name that never resolves (seconds, with no network), stalling every test after it.
    static let providers: [(plugin: String, config: String)] = [
        ("openai-compatible", #""base_url": "https://127.0.0.1:9/v1""#),
        ("anthropic", #""base_url": "https://127.0.0.1:9", "api_key": "k""#),
        ("azure-openai", #""base_url": "https://127.0.0.1:9", "api_key": "k""#),
        ("gemini", #""base_url": "https://127.0.0.1:9", "api_key": "k""#),
        ("bedrock", #""region": "us-east-1", "base_url": "https://127.0.0.1:9", "access_key_id": "AKIDEXAMPLE", "secret_access_key": "s""#),
    ]

    @Test(arguments: ProviderCAFileTests.providers.map(\.plugin))
    func aMissingBundleIsRefusedWithItsPath(plugin: String) async throws {
        let config = Self.providers.first { $0.plugin == plugin }!.config
        let missing = "/nonexistent/sluice-test-ca.pem"
        let errors = await manifestErrors(Self.manifest(plugin, config, caFile: missing))
        #expect(errors.count == 1)
        #expect(errors.first?.description.contains("providers.up.config.ca_file") == true, "\(errors)")
        #expect(errors.first?.description.contains("no such file: \(missing)") == true, "\(errors)")
    }

    @Test func aDirectoryIsNotABundle() async throws {
        let directory = TestFolder.make("ca-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (plugin, config) = Self.providers[0]
        let errors = await manifestErrors(Self.manifest(plugin, config, caFile: directory))
        #expect(errors.first?.description.contains("providers.up.config.ca_file") == true, "\(errors)")
    }

    @Test(arguments: ProviderCAFileTests.providers.map(\.plugin))
    func aReadableBundleLoads(plugin: String) async throws {
        let directory = TestFolder.make("ca-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bundle = directory + "/internal-ca.pem"
        // Read by curl at the first request, not at load: the load checks only that it is there.
        try "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".write(toFile: bundle, atomically: true, encoding: .utf8)
        let config = Self.providers.first { $0.plugin == plugin }!.config
        #expect(await manifestErrors(Self.manifest(plugin, config, caFile: bundle)).isEmpty)
    }

    @Test func theSchemaDescribesIt() {
        let field = ProviderConnection.schema.fields.first { $0.name == "ca_file" }
        #expect(field != nil)
        #expect(field?.description.contains("instead of the system store") == true)
    }
}
