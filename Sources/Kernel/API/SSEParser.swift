import NIOCore

/// Incremental `text/event-stream` parser (WHATWG HTML §9.2): events may be split across reads
/// at any byte; lines end in LF, CRLF or CR; `:` lines are comments; data lines accumulate.
/// An event (or a line) longer than `maxEventBytes` stops the parser: `overflowed` is set, and
/// nothing more is kept, so an upstream cannot make the gateway buffer without bound.
public struct SSEParser: Sendable {
    public let maxEventBytes: Int
    public private(set) var overflowed = false
    private var pending: [UInt8] = []
    private var sawCR = false
    private var event: String?
    private var data: [UInt8] = []
    private var hasData = false
    private var id: String?

    public init(maxEventBytes: Int = 1 << 20) { self.maxEventBytes = maxEventBytes }

    /// Feeds bytes, returning the events they complete.
    public mutating func feed(_ buffer: ByteBuffer) -> [SSEEvent] {
        var events: [SSEEvent] = []
        guard !overflowed else { return events }
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                if sawCR {
                    sawCR = false
                    if byte == UInt8(ascii: "\n") { continue }
                }
                switch byte {
                case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                    sawCR = byte == UInt8(ascii: "\r")
                    if let event = endLine() { events.append(event) }
                default:
                    guard pending.count + data.count < maxEventBytes else {
                        overflowed = true
                        pending = []
                        data = []
                        return
                    }
                    pending.append(byte)
                }
            }
        }
        return events
    }

    /// The event left when the stream ends without a final blank line.
    public mutating func finish() -> SSEEvent? {
        guard !overflowed else { return nil }
        if !pending.isEmpty { _ = endLine() }
        return dispatch()
    }

    private mutating func endLine() -> SSEEvent? {
        defer { pending.removeAll(keepingCapacity: true) }
        if pending.isEmpty { return dispatch() }
        if pending[0] == UInt8(ascii: ":") { return nil }
        let colon = pending.firstIndex(of: UInt8(ascii: ":")) ?? pending.endIndex
        let field = pending[..<colon]
        var valueStart = colon < pending.endIndex ? colon + 1 : colon
        if valueStart < pending.endIndex, pending[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = pending[valueStart...]
        switch String(decoding: field, as: UTF8.self) {
        case "data":
            if hasData { data.append(UInt8(ascii: "\n")) }
            data.append(contentsOf: value)
            hasData = true
        case "event": event = String(decoding: value, as: UTF8.self)
        case "id": id = String(decoding: value, as: UTF8.self)
        default: break  // `retry` and unknown fields are not forwarded
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            event = nil
            data.removeAll(keepingCapacity: true)
            hasData = false
        }
        guard hasData else { return nil }
        return SSEEvent(event: event, data: String(decoding: data, as: UTF8.self), id: id)
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
                if let chunk = try await base.next() {
                    ready = parser.feed(chunk)
                } else {
                    ended = true
                    if let last = parser.finish() { ready = [last] }
                }
            }
        }
    }
}
