import Kernel
import NIOHTTP1
import KernelTesting
import Testing
@testable import Plugins

/// The built-in plugins together, in-process through KernelTesting (no sockets, no upstream).
@Suite struct PipelineInProcessTests {
    static let manifest = """
        {"providers": {"p": {"plugin": "scripted", "config": {"reply": "hello from the script"}},
                       "broken": {"plugin": "scripted", "config": {"fail_status": 503}}},
         "models": {"m": {"targets": [{"provider": "p", "model": "upstream-m"}]},
                    "down": {"targets": [{"provider": "broken", "model": "x"}]}},
         "pipeline": [{"plugin": "api-key-auth", "config": {"keys": [{"name": "k", "key": "secret-key"}]}},
                      {"plugin": "validation"},
                      {"plugin": "cache", "config": {"mode": "all"}},
                      {"plugin": "router", "config": {"retries": 0}}]}
        """

    func gateway() async throws -> TestGateway {
        var registry = Builtins.registry()
        registry.register(ScriptedProvider.self)
        return try await TestGateway(manifest: Self.manifest, registry: registry)
    }

    @Test func answersWholeStreamedAndFromTheCache() async throws {
        let gateway = try await gateway()
        defer { Task { await gateway.shutdown() } }
        let auth: HTTPHeadersLiteral = ["authorization": "Bearer secret-key"]

        let whole = try await gateway.chat(model: "m", "say something", headers: auth.headers)
        #expect(whole.status == .ok)
        #expect(whole.text == "hello from the script")
        #expect(whole.headers.first(name: "x-sluice-cache") == "miss")

        let streamed = try await gateway.chat(model: "m", "say something", stream: true, headers: auth.headers)
        #expect(streamed.text == "hello from the script")
        #expect(streamed.headers.first(name: "x-sluice-cache") == "hit")
        #expect(gateway.calls.map(\.upstreamModel) == ["upstream-m"])
    }

    @Test func refusesInTheFrontDoorsShape() async throws {
        let gateway = try await gateway()
        defer { Task { await gateway.shutdown() } }
        let auth: HTTPHeadersLiteral = ["authorization": "Bearer secret-key"]

        #expect(try await gateway.chat(model: "m", "hi").status == .unauthorized)
        let invalid = try await gateway.send(.POST, "/v1/chat/completions",
                                             body: ["model": "m", "temperature": 5, "messages": [["role": "user", "content": "hi"]]],
                                             headers: auth.headers)
        #expect(invalid.status == .badRequest)
        #expect(invalid.error?["param"]?.string == "temperature")
        let down = try await gateway.chat(model: "down", "hi", headers: auth.headers)
        #expect(down.status == .serviceUnavailable)
        #expect(down.error?["message"]?.string?.contains("`down`") == true)
    }
}

/// `HTTPHeaders` from a dictionary literal, without importing NIOHTTP1 in every test.
struct HTTPHeadersLiteral: ExpressibleByDictionaryLiteral {
    let pairs: [(String, String)]
    init(dictionaryLiteral elements: (String, String)...) { pairs = elements }
    var headers: NIOHTTP1.HTTPHeaders { .init(pairs) }
}
