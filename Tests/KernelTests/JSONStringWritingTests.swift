import NIOCore
import Testing
@testable import Kernel

@Suite struct JSONStringWritingTests {
    static func written(_ string: String) -> (text: [UInt8], count: Int) {
        var buffer = ByteBuffer(string: "before")
        let count = buffer.writeJSONString(string)
        return (Array(buffer.readableBytesView.dropFirst(6)), count)
    }

    @Test func writesWhatJanssonWritesForEveryASCIICharacter() {
        for byte in UInt8(0)...0x7F {
            let string = String(decoding: [UInt8(ascii: "a"), byte, byte, UInt8(ascii: "z")], as: UTF8.self)
            let (text, count) = Self.written(string)
            #expect(text == JSON(string).encoded(), "byte \(byte)")
            #expect(count == text.count)
        }
    }

    @Test func writesWhatJanssonWritesForMixedText() {
        let samples = ["", "gpt-4o-mini", "é", "a\"b\\c/d", "line\nbreak\r\n\ttab", "\u{0}\u{1F}\u{7F}", "日本語 🚀 text",
                       String(repeating: "x\"", count: 200), "\u{2028}\u{2029}", "ends with \\"]
        for sample in samples {
            #expect(Self.written(sample).text == JSON(sample).encoded(), "\(sample.debugDescription)")
        }
    }

    @Test func readsBackAsTheSameString() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let scalars = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                Unicode.Scalar(UInt32.random(in: 0...0x7F, using: &generator)) ?? "?"
            } + ["é", "🚀"].shuffled(using: &generator).map { $0.unicodeScalars.first! }
            let string = String(String.UnicodeScalarView(scalars))
            var buffer = ByteBuffer()
            buffer.writeJSONString(string)
            #expect(try JSON.parse(buffer).string == string)
        }
    }
}
