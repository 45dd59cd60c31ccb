import Foundation
import KernelTesting
import Testing
@testable import Kernel

@Suite struct ManifestTests {
    let reader = ManifestReader(registry: testRegistry(), environment: ["KEY": "secret-value"])

    func errors(_ text: String) -> [String] {
        do {
            _ = try reader.read(Array(text.utf8), file: "plugins.json")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func acceptsAValidManifest() throws {
        let manifest = try reader.read(Array("""
            {"server": {"listen": ["127.0.0.1:0"]},
             "providers": {"p": {"plugin": "null-provider", "config": {"api_key": {"env": "KEY"}}}},
             "models": {"m": {"targets": [{"provider": "p", "model": "up"}]}},
             "pipeline": [{"plugin": "tag", "config": {"label": "x"}}, {"plugin": "tag", "enabled": false, "config": {"label": "y"}},
                          {"plugin": "answer"}]}
            """.utf8), file: "plugins.json")
        #expect(manifest.pipeline.map(\.plugin) == ["tag", "answer"])
        #expect(manifest.providers.first?.config["api_key"]?.string == "secret-value")
        #expect(manifest.pipeline.first?.config["count"]?.int == 1)
        #expect(manifest.server.maxBodyBytes == 8_388_608)
        #expect(manifest.models.first?.targets.first?.weight == 1)
    }

    @Test func namesTheFileAndPathOfEveryError() {
        let found = errors("""
            {"server": {"listen": ["nowhere"], "max_body_bytes": "ten", "listne": 1},
             "providers": {"p": {"plugin": "null-provider", "config": {"api_key": {"env": "MISSING_VAR"}}}},
             "models": {"m": {"targets": [{"provider": "q", "model": "up"}], "fallbacks": ["nope"]}},
             "pipeline": [{"plugin": "tga", "config": {}}, {"plugin": "tag", "config": {"label": 3, "extra": 1}}, {"plugin": "answer"}]}
            """)
        let expectations = [
            "plugins.json: server.max_body_bytes: expected a positive integer, got \"ten\"",
            "plugins.json: server.listne: unknown key; did you mean \"listen\"?",
            "plugins.json: server.listen[0]: expected host:port",
            "plugins.json: providers.p.config.api_key: environment variable MISSING_VAR is not set",
            "plugins.json: models.m.targets[0].provider: unknown provider \"q\"; did you mean \"p\"?",
            "plugins.json: models.m.fallbacks[0]: unknown model \"nope\"",
            "plugins.json: pipeline[0].plugin: unknown plugin \"tga\"; did you mean \"tag\"?",
            "plugins.json: pipeline[1].config.label: expected a string, got 3",
            "plugins.json: pipeline[1].config.extra: unknown key",
        ]
        for expected in expectations {
            #expect(found.contains { $0.hasPrefix(expected) }, "missing: \(expected)\nfound:\n\(found.joined(separator: "\n"))")
        }
        #expect(found.count == expectations.count, "\(found.joined(separator: "\n"))")
    }

    @Test func requiresATerminalPluginLast() {
        #expect(errors(#"{"pipeline": [{"plugin": "tag", "config": {"label": "x"}}]}"#)
            .contains { $0.hasPrefix("plugins.json: pipeline: must end with a terminal plugin") })
        #expect(errors(#"{"pipeline": [{"plugin": "answer"}, {"plugin": "tag", "config": {"label": "x"}}]}"#)
            .contains { $0.hasPrefix("plugins.json: pipeline[1].plugin: nothing may follow the terminal plugin \"answer\"") })
        #expect(errors(#"{"pipeline": []}"#).contains { $0.hasPrefix("plugins.json: pipeline: needs at least one enabled entry") })
        #expect(errors(#"{"server": {}}"#).contains { $0.hasPrefix("plugins.json: pipeline: is required") })
    }

    @Test func refusesPluginsOfTheWrongKind() {
        #expect(errors(#"{"pipeline": [{"plugin": "null-provider"}, {"plugin": "answer"}]}"#)
            .contains { $0.contains("pipeline[0].plugin: \"null-provider\" is a provider plugin") })
        #expect(errors(#"{"providers": {"p": {"plugin": "tag"}}, "pipeline": [{"plugin": "answer"}]}"#)
            .contains { $0.contains("providers.p.plugin: \"tag\" is a pipeline plugin, not a provider") })
    }

    @Test func reportsInvalidJSONWithPosition() {
        #expect(errors("{\n\"pipeline\": [,]}").first?.hasPrefix("plugins.json: not valid JSON: line 2") == true)
        #expect(errors("[]").first?.hasPrefix("plugins.json: expected a JSON object") == true)
    }

    @Test func neverPrintsSecrets() {
        let found = errors(#"{"providers": {"p": {"plugin": "null-provider", "config": {"api_key": {"vault": "x"}}}}, "pipeline": [{"plugin": "answer"}]}"#)
        #expect(found.contains { $0.contains("providers.p.config.api_key: expected a string or a secret reference") })
    }

    @Test func resolvesFileAndCredentialSecrets() throws {
        let directory = TestFolder.make("manifest")
        try "from-file\n".write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
        try "from-credential".write(toFile: directory + "/cred", atomically: true, encoding: .utf8)
        let reader = ManifestReader(registry: testRegistry(), environment: ["CREDENTIALS_DIRECTORY": directory])
        for (reference, expected) in [(#"{"file": "\#(directory)/secret"}"#, "from-file"), (#"{"credential": "cred"}"#, "from-credential")] {
            let manifest = try reader.read(Array("""
                {"providers": {"p": {"plugin": "null-provider", "config": {"api_key": \(reference)}}}, "pipeline": [{"plugin": "answer"}]}
                """.utf8), file: "m.json")
            #expect(manifest.providers.first?.config["api_key"]?.string == expected)
        }
    }

    @Test func leavesOutOptionalProvidersWhoseSecretsAreMissing() throws {
        let manifest = try reader.read(Array("""
            {"providers": {"p": {"plugin": "null-provider", "optional": true, "config": {"api_key": {"env": "ABSENT"}}},
                           "q": {"plugin": "null-provider", "config": {"api_key": {"env": "KEY"}}}},
             "models": {"m": {"targets": [{"provider": "p", "model": "up"}]}},
             "pipeline": [{"plugin": "answer"}]}
            """.utf8), file: "plugins.json")
        #expect(manifest.providers.map(\.name) == ["q"])
        #expect(manifest.unavailableProviders["p"]?.hasPrefix("environment variable ABSENT is not set") == true)
        #expect(manifest.warnings.map(\.description) == [
            "plugins.json: providers.p.config.api_key: left out (optional): environment variable ABSENT is not set (referenced as {\"env\": \"ABSENT\"})"
        ])
        // Optional does not excuse anything but a missing secret.
        #expect(errors(#"{"providers": {"p": {"plugin": "null-provider", "optional": true, "config": {"api_key": 5}}}, "pipeline": [{"plugin": "answer"}]}"#)
            .contains { $0.hasPrefix("plugins.json: providers.p.config.api_key: expected a string or a secret reference") })
    }

    @Test func resolvesRelativeSecretFilesAgainstTheManifestFolder() throws {
        let directory = TestFolder.make("manifest")
        try FileManager.default.createDirectory(atPath: directory + "/.sluice", withIntermediateDirectories: true)
        try "relative-secret".write(toFile: directory + "/.sluice/key", atomically: true, encoding: .utf8)
        let manifest = try reader.read(Array("""
            {"providers": {"p": {"plugin": "null-provider", "config": {"api_key": {"file": ".sluice/key"}}}}, "pipeline": [{"plugin": "answer"}]}
            """.utf8), file: directory + "/plugins.json")
        #expect(manifest.providers.first?.config["api_key"]?.string == "relative-secret")
    }

    @Test func suggestsClosestNames() {
        #expect(Suggestions.closest(to: "api-key-auht", among: ["router", "api-key-auth", "access-log"]) == ["api-key-auth"])
        #expect(Suggestions.distance("ab", "ba") == 1)
    }
}
