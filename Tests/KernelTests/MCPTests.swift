import Foundation
import Testing
@testable import Kernel

@Suite struct MCPSessionSealTests {
    let session = MCPSession(scope: nil, version: "2025-06-18",
                             upstream: ["web": .init(id: "abc123", version: "2025-06-18"), "stateless": .init(id: nil, version: "2025-03-26")],
                             caller: "team-a", created: 1_700_000_000)

    @Test func sealsAndOpens() {
        let seal = MCPSessionSeal(secret: String(repeating: "k", count: 32))
        let id = seal.seal(session)
        #expect(seal.open(id) == session)
        // Another replica with the same key opens it too.
        #expect(MCPSessionSeal(secret: String(repeating: "k", count: 32)).open(id) == session)
        // Visible ASCII only, as the transport requires; nothing inside readable.
        #expect(id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F })
        #expect(!id.contains("abc123") && !id.contains("team-a"))
        // A fresh nonce each time: the same state never gives the same id.
        #expect(seal.seal(session) != id)
    }

    @Test func refusesForgedAndAlteredIDs() {
        let seal = MCPSessionSeal(secret: String(repeating: "k", count: 32))
        let id = seal.seal(session)
        var bytes = Array(id.utf8)
        for index in [0, bytes.count / 2, bytes.count - 1] {
            var altered = bytes
            altered[index] = altered[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(seal.open(String(decoding: altered, as: UTF8.self)) == nil)
        }
        bytes.removeLast()
        #expect(seal.open(String(decoding: bytes, as: UTF8.self)) == nil)
        #expect(MCPSessionSeal(secret: String(repeating: "x", count: 32)).open(id) == nil)
        #expect(seal.open("") == nil)
        #expect(seal.open("not base64 at all!") == nil)
        #expect(seal.open(String(repeating: "A", count: 100_000)) == nil)
    }

    /// The id's spelling: base64 with `-` and `_`, no padding, and only the canonical one.
    @Test func base64URLIsBase64SpeltForURLs() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<40 {
            let data = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let expected = data.base64EncodedString().map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 }.filter { $0 != "=" }
            let text = Base64URL.encode(data)
            #expect(text == String(expected))
            #expect(MCPSessionSeal.data(base64URL: text) == data)
        }
        #expect(MCPSessionSeal.data(base64URL: "-_8") == Data([0xFB, 0xFF]))
        #expect(MCPSessionSeal.data(base64URL: "-_9") == nil)  // the same bytes with a spare bit set
        #expect(MCPSessionSeal.data(base64URL: "-_8=") == nil)
        #expect(MCPSessionSeal.data(base64URL: "+/8") == nil)
    }
}

@Suite struct MCPNamesTests {
    @Test func qualifiesAndSplits() {
        let names = MCPNames(separator: "__")
        #expect(names.qualified(server: "docs", "search") == "docs__search")
        #expect(names.split("docs__search")?.server == "docs")
        #expect(names.split("docs__search")?.name == "search")
        // The first separator splits: a tool's own name may contain it.
        #expect(names.split("docs__search__v2")?.name == "search__v2")
        #expect(names.split("search") == nil)
        #expect(names.split("__search") == nil)
        let dotted = MCPNames(separator: ".")
        #expect(dotted.split("git.log")?.server == "git")
    }

    @Test func globsMatchQualifiedNames() {
        #expect(ToolPattern("docs__*").matches("docs__search"))
        #expect(!ToolPattern("docs__*").matches("git__log"))
        #expect(ToolPattern("*").matches("anything"))
        #expect(ToolPattern("*__read_*").matches("fs__read_file"))
        #expect(!ToolPattern("*__read_*").matches("fs__write_file"))
        #expect(ToolPattern("git__l?g").matches("git__log"))
        #expect(!ToolPattern("git__l?g").matches("git__logs"))
        #expect(ToolPattern("git__log").matches("git__log"))
        #expect(!ToolPattern("").matches("x"))
        // Many stars stay linear.
        #expect(!ToolPattern(String(repeating: "*a", count: 50) + "b").matches(String(repeating: "a", count: 5000)))
        let identity = CallerIdentity(name: "k", allowedModels: nil, allowedTools: [ToolPattern("web__*")])
        #expect(identity.allows(tool: "web__add"))
        #expect(!identity.allows(tool: "local__add"))
        #expect(CallerIdentity(name: "all", allowedModels: nil).allows(tool: "local__add"))
    }
}

@Suite struct MCPMessageTests {
    @Test func classifiesMessages() throws {
        #expect(MCPMessageKind(try JSON.parse(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)) == .request(method: "tools/list"))
        #expect(MCPMessageKind(try JSON.parse(#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#)) == .request(method: "ping"))
        #expect(MCPMessageKind(try JSON.parse(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)) == .notification(method: "notifications/initialized"))
        #expect(MCPMessageKind(try JSON.parse(#"{"jsonrpc":"2.0","id":3,"result":{}}"#)) == .response)
        #expect(MCPMessageKind(try JSON.parse(#"{"jsonrpc":"1.0","id":1,"method":"x"}"#)) == .invalid)
        #expect(MCPMessageKind(try JSON.parse(#"{"jsonrpc":"2.0","id":null,"method":"x"}"#)) == .invalid)
        #expect(MCPMessageKind(try JSON.parse(#"[1]"#)) == .invalid)
    }

    @Test func negotiatesVersions() {
        #expect(MCPVersions.negotiate("2025-03-26") == "2025-03-26")
        #expect(MCPVersions.negotiate("2025-06-18") == "2025-06-18")
        #expect(MCPVersions.negotiate("2025-11-25") == "2025-11-25")
        #expect(MCPVersions.negotiate("2024-11-05") == "2025-11-25")
        #expect(MCPVersions.negotiate(nil) == "2025-11-25")
    }

    @Test func manifestChecksServers() throws {
        var errors: [(String, String)] = []
        let top = try JSON.parse(#"""
            {"mcp_servers": {"web": {"url": "http://h/mcp", "headers": {}, "env": {}, "timeout_s": 60, "max_restart_delay_s": 30},
                             "bad/name": {"command": ["x"], "headers": {}, "env": {}, "timeout_s": 60, "max_restart_delay_s": 30},
                             "both": {"url": "http://h", "command": ["x"], "headers": {}, "env": {}, "timeout_s": 60, "max_restart_delay_s": 30}},
             "mcp_name_separator": "__", "mcp_session_key": "too short"}
            """#)
        let mcp = MCPManifest.read(top) { errors.append(($0, $1)) }
        #expect(mcp.servers.map(\.name) == ["web", "bad/name", "both"])
        let paths = errors.map(\.0)
        #expect(paths.contains("mcp_servers[\"bad/name\"]") || paths.contains { $0.contains("bad/name") })
        #expect(paths.contains { $0.hasSuffix("both") })
        #expect(paths.contains("mcp_session_key"))
        #expect(!errors.contains { $0.1.contains("too short") })
    }

    @Test func keepsOnlyTheCapabilitiesSluiceRelays() throws {
        let declared = try JSON.parse(#"{"sampling": {"tools": {}}, "elicitation": {}, "roots": {"listChanged": true}, "experimental": {"x": {}}, "tasks": {}}"#)
        #expect(MCPClientCapabilities.relayable(declared) == (try JSON.parse(#"{"sampling": {"tools": {}}, "elicitation": {}, "roots": {"listChanged": true}}"#)))
        #expect(MCPClientCapabilities.relayable(nil) == .object())
        #expect(MCPClientCapabilities.relayable(try JSON.parse(#"{"sampling": true}"#)) == .object())
    }

    @Test func relayIDsNameTheServerAndItsOwnID() {
        #expect(MCPHTTPServer.relayID(server: "web", JSON(5)) == "web/5")
        #expect(MCPHTTPServer.relayID(server: "web", JSON("a/b")) == #"web/"a\/b""# || MCPHTTPServer.relayID(server: "web", JSON("a/b")) == #"web/"a/b""#)
    }

    @Test func aWholeAnswerUnlessSomethingComesFirst() async throws {
        let answer = try JSON.parse(#"{"jsonrpc": "2.0", "id": 1, "result": {}}"#)
        let request = try JSON.parse(#"{"jsonrpc": "2.0", "id": "s/1", "method": "roots/list"}"#)
        let (alone, only) = AsyncThrowingStream<JSON, any Error>.makeStream()
        only.yield(answer)
        only.finish()
        guard case .message(let whole) = try await MCPReply.whole(unlessMore: alone) else { Issue.record("expected a whole answer"); return }
        #expect(whole == answer)

        let (asking, both) = AsyncThrowingStream<JSON, any Error>.makeStream()
        both.yield(request)
        both.yield(answer)
        both.finish()
        guard case .stream(let messages) = try await MCPReply.whole(unlessMore: asking) else { Issue.record("expected a stream"); return }
        var seen: [JSON] = []
        for try await message in messages { seen.append(message) }
        #expect(seen == [request, answer])

        let (empty, none) = AsyncThrowingStream<JSON, any Error>.makeStream()
        none.finish()
        await #expect(throws: MCPServerError.self) { _ = try await MCPReply.whole(unlessMore: empty) }
    }
}
