import Testing
@testable import Kernel

struct RequestIDTests {
    @Test func madeIdsAreDistinctVersion4UUIDs() {
        let ids = (0..<100_000).map { _ in RequestID.make() }
        #expect(Set(ids).count == ids.count)
        let hex = Set("0123456789abcdef".utf8)
        for id in ids.prefix(1_000) {
            let bytes = Array(id.utf8)
            #expect(bytes.count == 36)
            #expect([8, 13, 18, 23].allSatisfy { bytes[$0] == UInt8(ascii: "-") })
            #expect(bytes.enumerated().allSatisfy { [8, 13, 18, 23].contains($0.offset) || hex.contains($0.element) })
            #expect(bytes[14] == UInt8(ascii: "4"))                 // version 4
            #expect("89ab".utf8.contains(bytes[19]))                // RFC 4122 variant
        }
    }

    @Test func clientIdsAreKeptWhenSane() {
        #expect(RequestID.fromClient("abc-123") == "abc-123")
        #expect(RequestID.fromClient("") == nil)
        #expect(RequestID.fromClient("a b") == nil)
        #expect(RequestID.fromClient(String(repeating: "x", count: 129)) == nil)
    }
}
