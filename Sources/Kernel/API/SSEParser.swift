import NIOCore

/// Incremental `text/event-stream` parser (WHATWG HTML §9.2): events may be split across reads
/// at any byte; lines end in LF, CRLF or CR; `:` lines are comments; data lines accumulate.
/// An event (or a line) longer than `maxEventBytes` stops the parser: `overflowed` is set, and
/// nothing more is kept, so an upstream cannot make the gateway buffer without bound.
public struct SSEParser: Sendable {
    public let maxEventBytes: Int
    public private(set) var overflowed = false
    /// The start of a line that the last chunk cut short. Lines that arrive whole are read in
    /// place, and an event's data is kept as the string it becomes: between events a parser
    /// holds no buffer (an open stream may wait long for its next chunk).
    private var pending: [UInt8] = []
    private var sawCR = false
    private var event: String?
    private var data = ""
    private var hasData = false
    private var id: String?

    public init(maxEventBytes: Int = 1 << 20) { self.maxEventBytes = maxEventBytes }

    /// Bytes kept between chunks (a cut line's start, the data of an event not yet ended).
    var heldBytes: Int { pending.capacity + data.utf8.count }

    /// Feeds bytes, returning the events they complete.
    public mutating func feed(_ buffer: ByteBuffer) -> [SSEEvent] {
        var events: [SSEEvent] = []
        guard !overflowed else { return events }
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            if sawCR {
                sawCR = false
                if bytes.first == UInt8(ascii: "\n") { start = 1 }
            }
            while start < bytes.count {
                guard let end = bytes[start...].firstIndex(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) else {
                    // A line the next chunk ends.
                    guard fits(pending.count + bytes.count - start) else { return stop() }
                    pending.append(contentsOf: bytes[start...])
                    return
                }
                guard fits(pending.count + end - start) else { return stop() }
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                var dispatched: SSEEvent?
                if pending.isEmpty {
                    dispatched = endLine(line)
                } else {
                    pending.append(contentsOf: line)
                    dispatched = pending.withUnsafeBytes { endLine($0) }
                    pending = []
                }
                if let dispatched { events.append(dispatched) }
                start = end + 1
                if bytes[end] == UInt8(ascii: "\r") {
                    if start == bytes.count { sawCR = true } else if bytes[start] == UInt8(ascii: "\n") { start += 1 }
                }
            }
        }
        return events
    }

    /// The event left when the stream ends without a final blank line.
    public mutating func finish() -> SSEEvent? {
        guard !overflowed else { return nil }
        if !pending.isEmpty {
            _ = pending.withUnsafeBytes { endLine($0) }
            pending = []
        }
        return dispatch()
    }

    /// Whether a line of `length` bytes keeps the event within `maxEventBytes`.
    private func fits(_ length: Int) -> Bool { length + data.utf8.count <= maxEventBytes }

    private mutating func stop() {
        overflowed = true
        pending = []
        data = ""
    }

    private mutating func endLine(_ line: UnsafeRawBufferPointer) -> SSEEvent? {
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let field = UnsafeRawBufferPointer(rebasing: line[..<colon])
        var valueStart = colon < line.endIndex ? colon + 1 : colon
        if valueStart < line.endIndex, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart...])
        if field.elementsEqual("data".utf8) {
            if hasData {
                data.append("\n")
                data.append(String(decoding: value, as: UTF8.self))
            } else {
                data = String(decoding: value, as: UTF8.self)
            }
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            event = String(decoding: value, as: UTF8.self)
        } else if field.elementsEqual("id".utf8) {
            id = String(decoding: value, as: UTF8.self)
        }  // `retry` and unknown fields are not forwarded
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            event = nil
            data = ""
            hasData = false
        }
        guard hasData else { return nil }
        return SSEEvent(event: event, data: data, id: id)
    }
}

extension EventStream {
    /// The events of a streamed upstream body, as a provider makes its stream. Made here, where
    /// every type of the chain is known: `EventStream(SSEEventSequence(body))`, written in a
    /// plugin's module, would run `SSEEventSequence` unspecialised, with a larger async frame at
    /// each layer for as long as the stream waits for its provider.
    public init(serverSentEventsOf body: UpstreamBody, maxEventBytes: Int = 1 << 20) {
        self.init(SSEEventSequence(body, maxEventBytes: maxEventBytes))
    }
}

/// Turns a stream of byte chunks into a stream of events, pulling a chunk only when needed.
public struct SSEEventSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = SSEEvent
    let base: Base
    let maxEventBytes: Int

    public init(_ base: Base, maxEventBytes: Int = 1 << 20) {
        self.base = base
        self.maxEventBytes = maxEventBytes
    }

    public func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), parser: SSEParser(maxEventBytes: maxEventBytes)) }

    /// Delivers the events before an overlong one, then fails with `UpstreamError.eventTooLarge`.
    public struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var parser: SSEParser
        var ready: [SSEEvent] = []
        var readyIndex = 0
        var ended = false

        public mutating func next() async throws -> SSEEvent? {
            while true {
                if readyIndex < ready.count {
                    defer { readyIndex += 1 }
                    return ready[readyIndex]
                }
                if parser.overflowed { throw UpstreamError.eventTooLarge(limit: parser.maxEventBytes) }
                if ended { return nil }
                // Let go of the handed-out events and their array (`feed` makes a new one): an
                // open stream may wait long for its next chunk.
                ready = []
                readyIndex = 0
                if let chunk = try await base.next(isolation: #isolation) {
                    ready = parser.feed(chunk)
                } else {
                    ended = true
                    if let last = parser.finish() { ready = [last] }
                }
            }
        }
    }
}
