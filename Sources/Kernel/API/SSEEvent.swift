import NIOCore

/// One server-sent event (the `text/event-stream` format used by OpenAI and Anthropic streams).
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field (Anthropic names every event; OpenAI names none).
    public var event: String?
    /// The `data:` lines, joined with "\n".
    public var data: String
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }

    /// OpenAI's end-of-stream marker.
    public static let done = SSEEvent(data: "[DONE]")
    public var isDone: Bool { data == "[DONE]" }

    /// The data parsed as JSON, or `nil` when it is not JSON (such as `[DONE]`).
    public var json: JSON? { try? JSON.parse(data) }

    /// Writes the event in wire format, ending with the blank line that dispatches it.
    public func write(to buffer: inout ByteBuffer) {
        if let event { buffer.writeString("event: \(event)\n") }
        if let id { buffer.writeString("id: \(id)\n") }
        if data.utf8.contains(UInt8(ascii: "\n")) {
            for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
                buffer.writeString("data: ")
                buffer.writeSubstring(line)
                buffer.writeString("\n")
            }
        } else {
            buffer.writeString("data: ")
            buffer.writeString(data)
            buffer.writeString("\n")
        }
        buffer.writeString("\n")
    }
}
