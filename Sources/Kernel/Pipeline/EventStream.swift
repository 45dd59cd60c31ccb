/// A response stream of server-sent events. Pull-based: the next event is produced only when the
/// client side asks for it, so a slow reader slows the upstream instead of filling memory.
public struct EventStream: AsyncSequence, Sendable {
    public typealias Element = SSEEvent
    private let makeIterator: @Sendable () -> Iterator

    public init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == SSEEvent {
        makeIterator = {
            var iterator = base.makeAsyncIterator()
            return Iterator { try await iterator.next() }
        }
    }

    /// A stream of the given events (for tests, errors and replays).
    public init(_ events: [SSEEvent]) {
        makeIterator = {
            var remaining = events[...]
            return Iterator { remaining.popFirst() }
        }
    }

    public func makeAsyncIterator() -> Iterator { makeIterator() }

    public struct Iterator: AsyncIteratorProtocol {
        let nextEvent: () async throws -> SSEEvent?
        public mutating func next() async throws -> SSEEvent? { try await nextEvent() }
    }

    /// Rewrites each event as it passes; returning `nil` drops it.
    public func rewriting(_ transform: @escaping @Sendable (SSEEvent) async throws -> SSEEvent?) -> EventStream {
        let source = self
        return EventStream(makeIterator: {
            var iterator = source.makeAsyncIterator()
            return Iterator {
                while let event = try await iterator.next() {
                    if let rewritten = try await transform(event) { return rewritten }
                }
                return nil
            }
        })
    }

    /// Lets `observe` see each event, and `finished` learn how the stream ended: `nil` when it
    /// ran to its end, the error when it failed, `CancellationError` when the client went away.
    public func observing(_ observe: @escaping @Sendable (SSEEvent) -> Void,
                          finished: @escaping @Sendable ((any Error)?) -> Void = { _ in }) -> EventStream {
        let source = self
        return EventStream(makeIterator: {
            var iterator = source.makeAsyncIterator()
            let end = StreamEnd(finished)
            return Iterator {
                do {
                    guard let event = try await iterator.next() else {
                        end.report(nil)
                        return nil
                    }
                    observe(event)
                    return event
                } catch {
                    end.report(error)
                    throw error
                }
            }
        })
    }

    init(makeIterator: @escaping @Sendable () -> Iterator) { self.makeIterator = makeIterator }
}

/// Reports a stream's end exactly once; an iterator dropped before its end counts as cancelled.
private final class StreamEnd: @unchecked Sendable {
    // Touched only by the one task that iterates the stream (and by deinit after it).
    private var callback: (@Sendable ((any Error)?) -> Void)?
    init(_ callback: @escaping @Sendable ((any Error)?) -> Void) { self.callback = callback }
    func report(_ error: (any Error)?) {
        callback?(error)
        callback = nil
    }
    deinit { callback?(CancellationError()) }
}

extension EventStream {
    /// Ends the stream with the event `replacement(error)` instead of throwing, so a failure after
    /// the status line was sent still reaches the client in the API's own shape. When the
    /// replacement is `nil` the error is thrown on.
    public func catchingErrors(_ replacement: @escaping @Sendable (any Error) -> SSEEvent?) -> EventStream {
        let source = self
        return EventStream(makeIterator: {
            var iterator = source.makeAsyncIterator()
            var failed = false
            return Iterator {
                guard !failed else { return nil }
                do {
                    return try await iterator.next()
                } catch {
                    failed = true
                    guard let event = replacement(error) else { throw error }
                    return event
                }
            }
        })
    }
}

/// Turns each event of a stream into zero or more events, with state (a dialect translation,
/// say). A fresh translator is made for each iteration.
public protocol EventTranslator {
    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent]
    /// Called once after the last event; may add closing events or throw if the stream was cut short.
    mutating func finish() throws -> [SSEEvent]
}

extension EventStream {
    public func translating<Translator: EventTranslator>(_ makeTranslator: @escaping @Sendable () -> Translator) -> EventStream {
        let source = self
        return EventStream(makeIterator: {
            var iterator = source.makeAsyncIterator()
            var translator = makeTranslator()
            var pending: [SSEEvent] = []
            var pendingIndex = 0
            var finished = false
            return Iterator {
                while true {
                    if pendingIndex < pending.count {
                        defer { pendingIndex += 1 }
                        return pending[pendingIndex]
                    }
                    if finished { return nil }
                    pending.removeAll(keepingCapacity: true)
                    pendingIndex = 0
                    if let event = try await iterator.next() {
                        pending = try translator.translate(event)
                    } else {
                        finished = true
                        pending = try translator.finish()
                    }
                }
            }
        })
    }
}
