import Kernel
import Testing
@testable import AcmePlugins

/// The stream side of `pii-mask` on event sequences as providers send them, addresses split.
struct StreamMaskerTests {
    /// Runs `events` through a masker as the pipeline would, and returns what the client gets.
    func masked(_ events: [SSEEvent]) -> [SSEEvent] {
        var masker = StreamMasker(replacement: "[email]")
        return events.flatMap { masker.translate($0) } + masker.finish()
    }

    func openAIChunk(_ text: String?, finish: String? = nil, index: Int = 0) -> SSEEvent {
        let delta: JSON = text.map { ["content": JSON($0)] } ?? .object()
        return SSEEvent(data: JSON(object: [("object", "chat.completion.chunk"), ("choices", [[
            "index": JSON(index), "delta": delta, "finish_reason": finish.map { JSON($0) } ?? .null]])]).description)
    }

    func openAIText(_ events: [SSEEvent], index: Int = 0) -> [String] {
        events.compactMap { event in
            event.json?["choices"]?.elements.first(where: { $0["index"]?.int == index })?["delta"]?["content"]?.string
        }
    }

    @Test func anAddressInPiecesNeverShows() {
        let pieces = ["Mail ", "ali", "ce@exa", "mple.", "com", " or ", "bob@example.org", ". Thanks"]
        let out = masked(pieces.map { openAIChunk($0) } + [openAIChunk(nil, finish: "stop"), .done])
        let texts = openAIText(out)
        #expect(texts.joined() == "Mail [email] or [email]. Thanks")
        for piece in ["ali", "exa", "mple", "bob"] { #expect(!texts.contains { $0.contains(piece) }) }
        // The held tail goes out before the chunk that finishes the choice, and [DONE] stays last.
        #expect(out.last?.isDone == true)
        #expect(out.dropLast().last?.json?["choices"]?[0]?["finish_reason"]?.string == "stop")
    }

    @Test func eachWordGoesOutOneEventLater() {
        let out = masked([openAIChunk("Hello"), openAIChunk(" there"), openAIChunk(" friend")])
        #expect(openAIText(out) == ["", "Hello ", "there ", "friend"])
    }

    @Test func choicesAreHeldApart() {
        let out = masked([openAIChunk("a@exam", index: 0), openAIChunk("plain", index: 1), openAIChunk("ple.com", index: 0),
                          openAIChunk(nil, finish: "stop", index: 1), openAIChunk(nil, finish: "stop", index: 0), .done])
        #expect(openAIText(out, index: 0).joined() == "[email]")
        #expect(openAIText(out, index: 1).joined() == "plain")
    }

    @Test func aLastChunkWithTextAndFinishHoldsNothingBack() {
        let out = masked([openAIChunk("write to x@example.com", finish: "stop"), .done])
        #expect(openAIText(out) == ["write to [email]"])
        #expect(out.count == 2)
    }

    @Test func anthropicBlocksAreMaskedAndFlushedAtTheirStop() {
        func delta(_ text: String) -> SSEEvent {
            SSEEvent(event: "content_block_delta", data: #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":\#(JSON(text).description)}}"#)
        }
        let out = masked([
            SSEEvent(event: "content_block_start", data: #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            delta("Write to carol@"), delta("example.com"),
            SSEEvent(event: "content_block_stop", data: #"{"type":"content_block_stop","index":0}"#),
            SSEEvent(event: "message_stop", data: #"{"type":"message_stop"}"#),
        ])
        let texts = out.compactMap { $0.json?["delta"]?["text"]?.string }
        #expect(texts.joined() == "Write to [email]")
        #expect(!texts.contains { $0.contains("carol") })
        #expect(out.map(\.event) == ["content_block_start", "content_block_delta", "content_block_delta", "content_block_delta",
                                     "content_block_stop", "message_stop"])
    }

    @Test func aLongRunIsNotHeldForever() {
        let blob = String(repeating: "x", count: 300)
        let out = masked([openAIChunk(blob), openAIChunk("y")])
        #expect(openAIText(out).first == blob)
    }
}
