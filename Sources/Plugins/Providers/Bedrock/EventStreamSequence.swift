import Kernel
import NIOCore

/// A ConverseStream answer's events, decoded from the binary event stream as it arrives: each
/// `event` message becomes an `SSEEvent` named by its `:event-type` with its JSON payload as data,
/// so the rest of the gateway handles it like any other stream. An `exception` message (or an
/// `error` one) ends the stream with the `GatewayError` it stands for; so does a message that
/// fails its checksums or is over the size limit.
struct EventStreamSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = SSEEvent
    let base: Base
    let maxMessageBytes: Int

    init(_ base: Base, maxMessageBytes: Int) {
        self.base = base
        self.maxMessageBytes = maxMessageBytes
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(base: base.makeAsyncIterator(), decoder: EventStreamDecoder(maxMessageBytes: maxMessageBytes))
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var decoder: EventStreamDecoder
        var ready: [EventStreamMessage] = []
        var readyIndex = 0
        var ended = false

        mutating func next() async throws -> SSEEvent? {
            while true {
                if readyIndex < ready.count {
                    defer { readyIndex += 1 }
                    return try Self.event(ready[readyIndex])
                }
                if let failure = decoder.failure { throw Self.error(failure) }
                if ended { return nil }
                ready.removeAll(keepingCapacity: true)
                readyIndex = 0
                if let chunk = try await base.next(isolation: #isolation) {
                    ready = decoder.feed(chunk)
                } else {
                    ended = true
                    do { try decoder.finish() } catch let error as EventStreamError { throw Self.error(error) }
                }
            }
        }

        static func event(_ message: EventStreamMessage) throws -> SSEEvent {
            let payload = String(decoding: message.payload, as: UTF8.self)
            switch message.string(":message-type") {
            case "event":
                return SSEEvent(event: message.string(":event-type") ?? "", data: payload)
            case "exception":
                throw BedrockFailure.streamException(type: message.string(":exception-type") ?? "", payload: message.payload)
            default:
                // `error` messages name their problem in headers rather than a payload.
                let code = message.string(":error-code") ?? message.string(":message-type") ?? "unknown"
                throw BedrockFailure.streamException(type: code, payload: Array((message.string(":error-message") ?? payload).utf8))
            }
        }

        static func error(_ failure: EventStreamError) -> any Error {
            if case .tooLarge(_, let limit) = failure { return UpstreamError.eventTooLarge(limit: limit) }
            return GatewayError(.badGateway, type: "upstream_error", "the provider's event stream is corrupt: \(failure)",
                                code: "upstream_invalid")
        }
    }
}
