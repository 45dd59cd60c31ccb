import Kernel
import NIOConcurrencyHelpers

/// Gathers a streamed answer's text as it passes (Chat Completions deltas, Messages text deltas,
/// Responses `output_text` deltas), up to `limit` bytes, for a check once the stream has ended.
final class StreamedAnswerText: Sendable {
    private let text = NIOLockedValueBox("")
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func add(_ event: SSEEvent) {
        guard let json = event.json else { return }
        let piece = json["choices"]?[0]?["delta"]?["content"]?.string ?? json["delta"]?["text"]?.string
            ?? (json["type"]?.string == "response.output_text.delta" ? json["delta"]?.string : nil)
        guard let piece, !piece.isEmpty else { return }
        text.withLockedValue { text in
            if text.utf8.count < limit { text += piece }
        }
    }

    var value: String { text.withLockedValue { $0 } }
}
