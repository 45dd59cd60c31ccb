/// A response stream of server-sent events. Pull-based: the next event is produced only when the
/// client side asks for it, so a slow reader slows the upstream instead of filling memory.
///
/// The wrappers plugins add (`observing`, `translating`, `catchingErrors`, `rewriting`) are
/// synchronous stages run by the stream's one iterator, not async iterators wrapping each other:
/// a stream waiting for its upstream holds one async frame instead of one per wrapper.
public struct EventStream: AsyncSequence, Sendable {
    public typealias Element = SSEEvent
    @usableFromInline let makeSource: @Sendable () -> () async throws -> SSEEvent?
    private var stages: [@Sendable () -> any EventStage] = []

    /// Inlinable, so that a plugin's own sequence is iterated by code specialised for it: run
    /// generically, every layer under the stream's iterator has a larger async frame, held for
    /// as long as the stream waits for its provider.
    @inlinable
    public init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == SSEEvent {
        makeSource = {
            var iterator = base.makeAsyncIterator()
            return { try await iterator.next(isolation: #isolation) }
        }
    }

    /// A stream of the given events (for tests, errors and replays).
    public init(_ events: [SSEEvent]) {
        makeSource = {
            var remaining = events[...]
            return { remaining.popFirst() }
        }
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(source: makeSource(), chain: StageChain(stages.map { $0() }))
    }

    public struct Iterator: AsyncIteratorProtocol {
        let source: () async throws -> SSEEvent?
        let chain: StageChain

        // Kept small, with the work in the chain's synchronous methods: its async frame lives as
        // long as the stream waits for its upstream.
        public mutating func next() async throws -> SSEEvent? {
            while true {
                if let event = try chain.nextOutput() { return event }
                if chain.isEnded { return nil }
                do {
                    chain.receive(try await source())
                } catch {
                    chain.fail(error, at: 0)
                }
            }
        }
    }

    private func adding(_ stage: @escaping @Sendable () -> any EventStage) -> EventStream {
        var copy = self
        copy.stages.append(stage)
        return copy
    }

    /// Rewrites each event as it passes; returning `nil` drops it.
    public func rewriting(_ transform: @escaping @Sendable (SSEEvent) throws -> SSEEvent?) -> EventStream {
        adding { Rewriter(transform) }
    }

    /// Lets `observe` see each event, and `finished` learn how the stream ended: `nil` when it
    /// ran to its end, the error when it failed, `CancellationError` when the client went away.
    public func observing(_ observe: @escaping @Sendable (SSEEvent) -> Void,
                          finished: @escaping @Sendable ((any Error)?) -> Void = { _ in }) -> EventStream {
        adding { Observer(observe, finished: finished) }
    }

    /// Ends the stream with the event `replacement(error)` instead of throwing, so a failure after
    /// the status line was sent still reaches the client in the API's own shape. When the
    /// replacement is `nil` the error is thrown on.
    public func catchingErrors(_ replacement: @escaping @Sendable (any Error) -> SSEEvent?) -> EventStream {
        adding { ErrorCatcher(replacement) }
    }

    /// Runs each event through a fresh translator made for this iteration.
    public func translating<Translator: EventTranslator>(_ makeTranslator: @escaping @Sendable () -> Translator) -> EventStream {
        adding { TranslationStage(makeTranslator()) }
    }
}

/// Turns each event of a stream into zero or more events, with state (a dialect translation,
/// say). A fresh translator is made for each iteration.
public protocol EventTranslator: SendableMetatype {
    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent]
    /// Called once after the last event; may add closing events or throw if the stream was cut short.
    mutating func finish() throws -> [SSEEvent]
}

// MARK: - Stages

/// One step of a stream: passes events on through `emit`, learns of the end and of failures.
/// A class, so that a stage emitting into the next does not hold the chain's stages exclusively.
protocol EventStage: AnyObject {
    func receive(_ event: SSEEvent, emit: (SSEEvent) -> Void) throws
    /// After the last event; may emit closing events, or throw.
    func finish(emit: (SSEEvent) -> Void) throws
    /// A stage before this one failed: rethrow (the default), or emit replacement events, which
    /// end the stream.
    func fail(_ error: any Error, emit: (SSEEvent) -> Void) throws
}

extension EventStage {
    func finish(emit: (SSEEvent) -> Void) throws {}
    func fail(_ error: any Error, emit: (SSEEvent) -> Void) throws { throw error }
}

/// The stages of one iteration, with the events they have let through and not yet handed out.
/// An event runs through every stage before the next is pulled from the source. Once a stage has
/// finished or failed, the stream is over: what stages before it would still emit is dropped, as
/// an async wrapper would never have pulled it.
final class StageChain {
    private let stages: [any EventStage]
    /// What the last stage let through: most events pass one for one, so the first waits in a
    /// slot and only a stage that emits several fills `more` (freed once handed out: an open
    /// stream waits long between events).
    private var output: SSEEvent?
    private var more: [SSEEvent] = []
    private var moreIndex = 0
    /// Stages before this index have ended and take no more events.
    private var firstLive = 0
    private var error: (any Error)?
    private(set) var isEnded = false

    init(_ stages: [any EventStage]) {
        self.stages = stages
    }

    /// The next event let through, or the stream's error once those before it were handed out.
    func nextOutput() throws -> SSEEvent? {
        if let event = output {
            output = nil
            return event
        }
        if moreIndex < more.count {
            defer { moreIndex += 1 }
            return more[moreIndex]
        }
        if !more.isEmpty {
            more = []
            moreIndex = 0
        }
        if let error {
            self.error = nil
            throw error
        }
        return nil
    }

    /// The source's next event, or its end (`nil`).
    func receive(_ event: SSEEvent?) {
        if let event { push(event, at: 0) } else { finish(at: 0) }
    }

    func push(_ event: SSEEvent, at index: Int) {
        guard index >= firstLive else { return }
        guard index < stages.count else {
            if output == nil, more.isEmpty { output = event } else { more.append(event) }
            return
        }
        do {
            try stages[index].receive(event) { push($0, at: index + 1) }
        } catch {
            // A stage that throws ends the stream (unless it had already ended behind it), though
            // the stages behind it may still catch.
            if index >= firstLive { fail(error, at: index + 1) }
        }
    }

    func finish(at index: Int) {
        firstLive = max(firstLive, index + 1)
        guard index < stages.count else { return isEnded = true }
        do {
            try stages[index].finish { push($0, at: index + 1) }
        } catch {
            if !isEnded { fail(error, at: index + 1) }
            return
        }
        if !isEnded { finish(at: index + 1) }  // unless a later stage failed on what this one emitted
    }

    func fail(_ error: any Error, at index: Int) {
        firstLive = max(firstLive, index + 1)
        guard index < stages.count else {
            self.error = error
            isEnded = true
            return
        }
        do {
            try stages[index].fail(error) { push($0, at: index + 1) }
        } catch {
            if !isEnded { fail(error, at: index + 1) }
            return
        }
        if !isEnded { finish(at: index + 1) }  // unless a later stage failed on what this one emitted
    }
}

private final class Rewriter: EventStage {
    let transform: @Sendable (SSEEvent) throws -> SSEEvent?
    init(_ transform: @escaping @Sendable (SSEEvent) throws -> SSEEvent?) { self.transform = transform }
    func receive(_ event: SSEEvent, emit: (SSEEvent) -> Void) throws {
        if let rewritten = try transform(event) { emit(rewritten) }
    }
}

/// Reports the stream's end exactly once; an iteration dropped before its end counts as cancelled.
private final class Observer: EventStage {
    let observe: @Sendable (SSEEvent) -> Void
    private var finished: (@Sendable ((any Error)?) -> Void)?
    init(_ observe: @escaping @Sendable (SSEEvent) -> Void, finished: @escaping @Sendable ((any Error)?) -> Void) {
        self.observe = observe
        self.finished = finished
    }
    func receive(_ event: SSEEvent, emit: (SSEEvent) -> Void) {
        observe(event)
        emit(event)
    }
    func finish(emit: (SSEEvent) -> Void) { report(nil) }
    func fail(_ error: any Error, emit: (SSEEvent) -> Void) throws {
        report(error)
        throw error
    }
    private func report(_ error: (any Error)?) {
        finished?(error)
        finished = nil
    }
    deinit { finished?(CancellationError()) }
}

private final class ErrorCatcher: EventStage {
    let replacement: @Sendable (any Error) -> SSEEvent?
    init(_ replacement: @escaping @Sendable (any Error) -> SSEEvent?) { self.replacement = replacement }
    func receive(_ event: SSEEvent, emit: (SSEEvent) -> Void) { emit(event) }
    func fail(_ error: any Error, emit: (SSEEvent) -> Void) throws {
        guard let event = replacement(error) else { throw error }
        emit(event)
    }
}

private final class TranslationStage<Translator: EventTranslator>: EventStage {
    var translator: Translator
    init(_ translator: Translator) { self.translator = translator }
    func receive(_ event: SSEEvent, emit: (SSEEvent) -> Void) throws {
        for translated in try translator.translate(event) { emit(translated) }
    }
    func finish(emit: (SSEEvent) -> Void) throws {
        for closing in try translator.finish() { emit(closing) }
    }
}
