import Testing
@testable import Kernel

/// `HTTPSyntax` against the RFC's rules written out byte by byte, over every byte at every
/// position of a word and over random text (docs/ARCHITECTURE.md, "A request's path").
@Suite struct HTTPSyntaxTests {
    static func isValidValueByTheRule(_ value: String) -> Bool {
        value.utf8.allSatisfy { byte in byte == 0x09 || (byte >= 0x20 && byte != 0x7F) }
    }

    static func isTokenByTheRule(_ name: String) -> Bool {
        let symbols = Set("!#$%&'*+-.^_`|~".utf8)
        return !name.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || symbols.contains(byte)
        }
    }

    @Test func everyASCIIByteAtEveryPositionOfAWord() {
        for byte in UInt8(0)...0x7F {
            for position in 0..<20 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 20)
                bytes[position] = byte
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(HTTPSyntax.isValidValue(text) == Self.isValidValueByTheRule(text), "byte \(byte) at \(position)")
                #expect(HTTPSyntax.isToken(text) == Self.isTokenByTheRule(text), "byte \(byte) at \(position)")
            }
        }
    }

    @Test func randomText() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x21, 0x41, 0x7E, 0x7F, 0x80, 0xC3, 0xA9, 0xFF]
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(HTTPSyntax.isValidValue(text) == Self.isValidValueByTheRule(text), "\(bytes)")
            #expect(HTTPSyntax.isToken(text) == Self.isTokenByTheRule(text), "\(bytes)")
        }
    }

    @Test func anEmptyNameIsNoToken() {
        #expect(!HTTPSyntax.isToken(""))
        #expect(HTTPSyntax.isValidValue(""))
    }

    @Test func aByteSetHoldsItsMembersInEachQuarter() {
        // "\u{1}" and "?" in the first quarter, "@" and DEL in the second, é's two bytes (0xC3 0xA9) in the third and fourth.
        let set = ByteSet("\u{1}?@\u{7F}é")
        let members: Set<UInt8> = [0x01, 0x3F, 0x40, 0x7F, 0xC3, 0xA9]
        for byte in UInt8.min...UInt8.max {
            #expect(set.contains(byte) == members.contains(byte), "\(byte)")
        }
    }
}
