import NIOHTTP1
import Testing
@testable import Kernel

@Suite struct HTTPHeadersReplacingTests {
    static func pairs(_ headers: HTTPHeaders) -> [String] { headers.map { "\($0.name): \($0.value)" } }

    @Test func setsFieldsAsReplaceOrAddSetsEachOne() {
        let upstream: HTTPHeaders = ["Content-Type": "application/json", "X-Request-ID": "upstream-id", "x-other": "1",
                                     "x-request-id": "again", "X-Sluice-Providers": "kept"]
        var ours = upstream
        ours.replaceOrAdd(["x-request-id": "ours", "x-sluice-provider": "openai"])
        var nios = upstream
        nios.replaceOrAdd(name: "x-request-id", value: "ours")
        nios.replaceOrAdd(name: "x-sluice-provider", value: "openai")
        #expect(Self.pairs(ours) == Self.pairs(nios))
        #expect(Self.pairs(ours) == ["Content-Type: application/json", "x-other: 1", "X-Sluice-Providers: kept",
                                     "x-request-id: ours", "x-sluice-provider: openai"])
    }

    @Test func namesAreTheSameInAnyCaseOnly() {
        #expect(HTTPSyntax.isSameName("X-Request-ID", "x-request-id"))
        #expect(!HTTPSyntax.isSameName("x-request-id", "x-request-ie"))
        #expect(!HTTPSyntax.isSameName("x-request-id", "x-request-id2"))
        // '@' and '`' differ from each other by the case bit only, but are no letters.
        #expect(!HTTPSyntax.isSameName("a@", "a`"))
        #expect(!HTTPSyntax.isSameName("a[", "a{"))
    }
}
