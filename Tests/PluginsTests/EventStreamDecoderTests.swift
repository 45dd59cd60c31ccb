import Foundation
import Kernel
import NIOCore
import Testing
@testable import Plugins

/// The `application/vnd.amazon.eventstream` decoder: a recorded ConverseStream (a text answer,
/// then a tool call; checked with botocore's decoder when it was recorded) decodes whole, in
/// chunks split at every byte, and byte by byte; broken checksums and oversized messages stop it.
@Suite struct EventStreamDecoderTests {
    /// 7 messages of a text answer (1165 bytes), then 9 of a tool call (its arguments in four pieces).
    static let recorded = Array(Data(base64Encoded: "AAAAjAAAAFKUUbIiCzpldmVudC10eXBlBwAMbWVzc2FnZVN0YXJ0DTpjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29uDTptZXNzYWdlLXR5cGUHAAVldmVudHsicm9sZSI6ImFzc2lzdGFudCIsInAiOiJhYmNkZWZnaGlqa2xtbm8ifX40Y58AAACyAAAAV/oqQEoLOmV2ZW50LXR5cGUHABFjb250ZW50QmxvY2tEZWx0YQ06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7ImNvbnRlbnRCbG9ja0luZGV4IjowLCJkZWx0YSI6eyJ0ZXh0IjoiZWNobzoifSwicCI6ImFiY2RlZmdoaWprbG1ub3BxcnN0In1CrpgLAAAAsAAAAFeA6hMqCzpldmVudC10eXBlBwARY29udGVudEJsb2NrRGVsdGENOmNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb24NOm1lc3NhZ2UtdHlwZQcABWV2ZW50eyJjb250ZW50QmxvY2tJbmRleCI6MCwiZGVsdGEiOnsidGV4dCI6IiBoaSJ9LCJwIjoiYWJjZGVmZ2hpamtsbW5vcHFyc3QiffkvpkAAAACzAAAAV8dKafoLOmV2ZW50LXR5cGUHABFjb250ZW50QmxvY2tEZWx0YQ06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7ImNvbnRlbnRCbG9ja0luZGV4IjowLCJkZWx0YSI6eyJ0ZXh0IjoiIHRoZXJlIn0sInAiOiJhYmNkZWZnaGlqa2xtbm9wcXJzdCJ91cdihQAAAJcAAABWhAzQqAs6ZXZlbnQtdHlwZQcAEGNvbnRlbnRCbG9ja1N0b3ANOmNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb24NOm1lc3NhZ2UtdHlwZQcABWV2ZW50eyJjb250ZW50QmxvY2tJbmRleCI6MCwicCI6ImFiY2RlZmdoaWprbG1ub3BxcnMifYAAOHgAAACPAAAAUUr4mUgLOmV2ZW50LXR5cGUHAAttZXNzYWdlU3RvcA06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7InN0b3BSZWFzb24iOiJlbmRfdHVybiIsInAiOiJhYmNkZWZnaGlqa2xtbiJ9Z3LkNQAAAMYAAABOkhOuhQs6ZXZlbnQtdHlwZQcACG1ldGFkYXRhDTpjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29uDTptZXNzYWdlLXR5cGUHAAVldmVudHsidXNhZ2UiOnsiaW5wdXRUb2tlbnMiOjMsIm91dHB1dFRva2VucyI6MywidG90YWxUb2tlbnMiOjZ9LCJtZXRyaWNzIjp7ImxhdGVuY3lNcyI6N30sInAiOiJhYmNkZWZnaGlqayJ94d5RzgAAAIwAAABSlFGyIgs6ZXZlbnQtdHlwZQcADG1lc3NhZ2VTdGFydA06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7InJvbGUiOiJhc3Npc3RhbnQiLCJwIjoiYWJjZGVmZ2hpamtsbW5vIn1+NGOfAAAA8QAAAFfleWLTCzpldmVudC10eXBlBwARY29udGVudEJsb2NrU3RhcnQNOmNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb24NOm1lc3NhZ2UtdHlwZQcABWV2ZW50eyJjb250ZW50QmxvY2tJbmRleCI6MCwic3RhcnQiOnsidG9vbFVzZSI6eyJ0b29sVXNlSWQiOiJ0b29sdXNlXzEzM2M5ZWZjMzBiODQwYzM4YmE1NDAiLCJuYW1lIjoiZ2V0X3dlYXRoZXIifX0sInAiOiJhYmNkZWZnaGlqa2xtbm9wcXJzdCJ90zvYEgAAAMEAAABXRFjaVQs6ZXZlbnQtdHlwZQcAEWNvbnRlbnRCbG9ja0RlbHRhDTpjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29uDTptZXNzYWdlLXR5cGUHAAVldmVudHsiY29udGVudEJsb2NrSW5kZXgiOjAsImRlbHRhIjp7InRvb2xVc2UiOnsiaW5wdXQiOiJ7XCJsb2NhIn19LCJwIjoiYWJjZGVmZ2hpamtsbW5vcHFyc3QifaJzT5AAAADBAAAAV0RY2lULOmV2ZW50LXR5cGUHABFjb250ZW50QmxvY2tEZWx0YQ06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7ImNvbnRlbnRCbG9ja0luZGV4IjowLCJkZWx0YSI6eyJ0b29sVXNlIjp7ImlucHV0IjoidGlvblwiOiJ9fSwicCI6ImFiY2RlZmdoaWprbG1ub3BxcnN0In1H0N/iAAAAwQAAAFdEWNpVCzpldmVudC10eXBlBwARY29udGVudEJsb2NrRGVsdGENOmNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb24NOm1lc3NhZ2UtdHlwZQcABWV2ZW50eyJjb250ZW50QmxvY2tJbmRleCI6MCwiZGVsdGEiOnsidG9vbFVzZSI6eyJpbnB1dCI6IiBcIlBhcmkifX0sInAiOiJhYmNkZWZnaGlqa2xtbm9wcXJzdCJ97IJxUQAAAL4AAABXP9qtSws6ZXZlbnQtdHlwZQcAEWNvbnRlbnRCbG9ja0RlbHRhDTpjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29uDTptZXNzYWdlLXR5cGUHAAVldmVudHsiY29udGVudEJsb2NrSW5kZXgiOjAsImRlbHRhIjp7InRvb2xVc2UiOnsiaW5wdXQiOiJzXCJ9In19LCJwIjoiYWJjZGVmZ2hpamtsbW5vcHFyc3QifWXCsSkAAACXAAAAVoQM0KgLOmV2ZW50LXR5cGUHABBjb250ZW50QmxvY2tTdG9wDTpjb250ZW50LXR5cGUHABBhcHBsaWNhdGlvbi9qc29uDTptZXNzYWdlLXR5cGUHAAVldmVudHsiY29udGVudEJsb2NrSW5kZXgiOjAsInAiOiJhYmNkZWZnaGlqa2xtbm9wcXJzIn2AADh4AAAAjwAAAFFK+JlICzpldmVudC10eXBlBwALbWVzc2FnZVN0b3ANOmNvbnRlbnQtdHlwZQcAEGFwcGxpY2F0aW9uL2pzb24NOm1lc3NhZ2UtdHlwZQcABWV2ZW50eyJzdG9wUmVhc29uIjoidG9vbF91c2UiLCJwIjoiYWJjZGVmZ2hpamtsbW4ifX0GER4AAADGAAAATpITroULOmV2ZW50LXR5cGUHAAhtZXRhZGF0YQ06Y29udGVudC10eXBlBwAQYXBwbGljYXRpb24vanNvbg06bWVzc2FnZS10eXBlBwAFZXZlbnR7InVzYWdlIjp7ImlucHV0VG9rZW5zIjo1LCJvdXRwdXRUb2tlbnMiOjAsInRvdGFsVG9rZW5zIjo1fSwibWV0cmljcyI6eyJsYXRlbmN5TXMiOjd9LCJwIjoiYWJjZGVmZ2hpamsifeNRo3s=")!)
    static let textAnswerBytes = 1165

    static func decodeAll(_ chunks: [ArraySlice<UInt8>], limit: Int = 1 << 20) -> (messages: [EventStreamMessage], failure: EventStreamError?) {
        var decoder = EventStreamDecoder(maxMessageBytes: limit)
        var messages: [EventStreamMessage] = []
        for chunk in chunks { messages += decoder.feed(ByteBuffer(bytes: chunk)) }
        return (messages, decoder.failure)
    }

    static var eventTypes: [String] {
        decodeAll([recorded[...]]).messages.compactMap { $0.string(":event-type") }
    }

    @Test func decodesARecordedStream() throws {
        let (messages, failure) = Self.decodeAll([Self.recorded[...]])
        #expect(failure == nil)
        #expect(Self.eventTypes == ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta", "contentBlockStop",
                                    "messageStop", "metadata", "messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockDelta",
                                    "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"])
        #expect(messages.allSatisfy { $0.string(":message-type") == "event" && $0.string(":content-type") == "application/json" })
        let text = messages.prefix(7).compactMap { try? JSON.parse(ByteBuffer(bytes: $0.payload))["delta"]?["text"]?.string }.joined()
        #expect(text == "echo: hi there")
        let usage = try JSON.parse(ByteBuffer(bytes: messages[6].payload))["usage"]
        #expect(usage?["outputTokens"]?.int == 3)
    }

    @Test func decodesAcrossEveryChunkBoundary() {
        let whole = Self.decodeAll([Self.recorded[...]]).messages
        let text = Self.recorded[..<Self.textAnswerBytes]
        for split in 0...text.count {
            let (messages, failure) = Self.decodeAll([text[..<split], text[split...]])
            #expect(failure == nil)
            #expect(messages == Array(whole.prefix(7)), "split at \(split)")
        }
        let bytes = Self.decodeAll(Self.recorded.indices.map { Self.recorded[$0...$0] })
        #expect(bytes.failure == nil)
        #expect(bytes.messages == whole)
    }

    @Test func aBadPreludeChecksumIsAnError() {
        var bytes = Self.recorded
        bytes[11] ^= 0x01  // the first message's prelude CRC
        let (messages, failure) = Self.decodeAll([bytes[...]])
        #expect(messages.isEmpty)
        #expect(failure == .preludeChecksum)
    }

    @Test func aBadMessageChecksumIsAnErrorAfterTheGoodMessages() {
        var bytes = Self.recorded
        let first = Int(UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3]))
        let second = Int(UInt32(bytes[first]) << 24 | UInt32(bytes[first + 1]) << 16 | UInt32(bytes[first + 2]) << 8 | UInt32(bytes[first + 3]))
        bytes[first + second - 1] ^= 0x80  // the second message's CRC
        let (messages, failure) = Self.decodeAll([bytes[...]])
        #expect(messages.count == 1)
        #expect(failure == .messageChecksum)
        // A payload byte changed is caught the same way.
        var payload = Self.recorded
        payload[first + 40] ^= 0x20
        #expect(Self.decodeAll([payload[...]]).failure == .messageChecksum)
        // And nothing more is decoded after a failure.
        var decoder = EventStreamDecoder()
        _ = decoder.feed(ByteBuffer(bytes: bytes))
        #expect(decoder.feed(ByteBuffer(bytes: Self.recorded)).isEmpty)
    }

    @Test func anOversizedMessageIsRefusedFromItsPrelude() {
        // Only the prelude is fed: the announced length alone refuses it.
        let (messages, failure) = Self.decodeAll([Self.recorded[..<12]], limit: 64)
        #expect(messages.isEmpty)
        if case .tooLarge(let length, 64) = failure { #expect(length > 64) } else { Issue.record("expected tooLarge, got \(String(describing: failure))") }
    }

    @Test func aStreamCutInsideAMessageIsTruncated() throws {
        var decoder = EventStreamDecoder()
        #expect(decoder.feed(ByteBuffer(bytes: Self.recorded[..<100])).isEmpty)
        #expect(throws: EventStreamError.truncated) { try decoder.finish() }
        var complete = EventStreamDecoder()
        _ = complete.feed(ByteBuffer(bytes: Self.recorded))
        try complete.finish()
    }

    @Test func readsEveryHeaderType() {
        var headers: [UInt8] = []
        func header(_ name: String, _ type: UInt8, _ value: [UInt8]) { headers += [UInt8(name.utf8.count)] + Array(name.utf8) + [type] + value }
        header("t", 0, [])
        header("f", 1, [])
        header("b", 2, [0xFF])
        header("s", 3, [0x01, 0x02])
        header("i", 4, [0x00, 0x00, 0x01, 0x00])
        header("l", 5, [0, 0, 0, 0, 0, 0, 0, 9])
        header("y", 6, [0x00, 0x02, 0xAB, 0xCD])
        header("str", 7, [0x00, 0x02] + Array("ok".utf8))
        header("ts", 8, [0, 0, 0x01, 0x8F, 0, 0, 0, 0])
        header("u", 9, Array(0..<16))
        let payload = Array("{}".utf8)
        let total = UInt32(16 + headers.count + payload.count)
        var message = [UInt8(total >> 24), UInt8((total >> 16) & 0xFF), UInt8((total >> 8) & 0xFF), UInt8(total & 0xFF),
                       0, 0, UInt8(headers.count >> 8), UInt8(headers.count & 0xFF)]
        let preludeCRC = CRC32.checksum(message)
        message += [UInt8(preludeCRC >> 24), UInt8((preludeCRC >> 16) & 0xFF), UInt8((preludeCRC >> 8) & 0xFF), UInt8(preludeCRC & 0xFF)]
        message += headers + payload
        let crc = CRC32.checksum(message)
        message += [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]

        let (messages, failure) = Self.decodeAll([message[...]])
        #expect(failure == nil)
        let values = messages.first?.headers.map(\.value)
        #expect(values == [.bool(true), .bool(false), .byte(-1), .int16(0x0102), .int32(256), .int64(9), .bytes([0xAB, 0xCD]),
                           .string("ok"), .timestamp(0x018F_0000_0000), .uuid(Array(0..<16))])
        #expect(messages.first?.string("str") == "ok")
        #expect(messages.first?.payload == payload)
    }

    @Test func crc32MatchesZlib() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum(Array("6789".utf8), continuing: CRC32.checksum(Array("12345".utf8))) == 0xCBF4_3926)
    }

    @Test func theEncoderRoundTrips() {
        let bytes = EventStreamEncoder.encode(headers: [(":message-type", "event"), (":event-type", "messageStart")],
                                              payload: Array(#"{"role":"assistant"}"#.utf8))
        let (messages, failure) = Self.decodeAll([bytes[...]])
        #expect(failure == nil)
        #expect(messages.first?.string(":event-type") == "messageStart")
    }
}
