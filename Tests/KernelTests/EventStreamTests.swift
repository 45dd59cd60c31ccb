import Synchronization
import Testing
@testable import Kernel

/// What the stages of a stream saw, in order.
private final class Journal: Sendable {
    private let entries = Mutex<[String]>([])
    func add(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }

    func observer(_ name: String) -> (@Sendable (SSEEvent) -> Void, @Sendable ((any Error)?) -> Void) {
        ({ self.add("\(name) saw \($0.data)") }, { error in
            switch error {
            case nil: self.add("\(name) ended")
            case is CancellationError: self.add("\(name) cancelled")
            case let error?: self.add("\(name) failed: \(error)")
            }
        })
    }
}

private struct Boom: Error, CustomStringConvertible {
    let where_: String
    var description: String { "boom in \(where_)" }
}

/// Doubles each event and closes with "end"; throws on "bad".
private struct Doubler: EventTranslator {
    mutating func translate(_ event: SSEEvent) throws -> [SSEEvent] {
        if event.data == "bad" { throw Boom(where_: "translator") }
        return [SSEEvent(data: event.data + "1"), SSEEvent(data: event.data + "2")]
    }
    mutating func finish() throws -> [SSEEvent] { [SSEEvent(data: "end")] }
}

/// A source that fails after its events.
private struct FailingSource: AsyncSequence, Sendable {
    let events: [String]
    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: ArraySlice<String>
        mutating func next() async throws -> SSEEvent? {
            guard let data = remaining.popFirst() else { throw Boom(where_: "source") }
            return SSEEvent(data: data)
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: events[...]) }
}

private func collect(_ stream: EventStream) async -> (events: [String], error: String?) {
    var events: [String] = []
    do {
        for try await event in stream { events.append(event.data) }
        return (events, nil)
    } catch {
        return (events, "\(error)")
    }
}

@Suite struct EventStreamTests {
    @Test func stagesRunInTheOrderTheyWereAddedAndEachEndsOnce() async {
        let journal = Journal()
        let (seeInner, endInner) = journal.observer("inner")
        let (seeOuter, endOuter) = journal.observer("outer")
        let stream = EventStream([SSEEvent(data: "a"), SSEEvent(data: "skip"), SSEEvent(data: "b")])
            .observing(seeInner, finished: endInner)
            .rewriting { $0.data == "skip" ? nil : $0 }
            .translating { Doubler() }
            .observing(seeOuter, finished: endOuter)
        let result = await collect(stream)
        #expect(result.events == ["a1", "a2", "b1", "b2", "end"])
        #expect(result.error == nil)
        #expect(journal.all == ["inner saw a", "outer saw a1", "outer saw a2", "inner saw skip", "inner saw b",
                                "outer saw b1", "outer saw b2", "inner ended", "outer saw end", "outer ended"])
    }

    @Test func aSourceFailureReachesEachStageUntilOneCatchesIt() async {
        let journal = Journal()
        let (seeInner, endInner) = journal.observer("inner")
        let (seeOuter, endOuter) = journal.observer("outer")
        let stream = EventStream(FailingSource(events: ["a"]))
            .observing(seeInner, finished: endInner)
            .catchingErrors { SSEEvent(event: "error", data: "caught \($0)") }
            .observing(seeOuter, finished: endOuter)
        let result = await collect(stream)
        #expect(result.events == ["a", "caught boom in source"])
        #expect(result.error == nil)
        #expect(journal.all == ["inner saw a", "outer saw a", "inner failed: boom in source",
                                "outer saw caught boom in source", "outer ended"])
    }

    @Test func aStageFailureEndsTheStreamAfterWhatWasLetThroughBeforeIt() async {
        let journal = Journal()
        let (seeInner, endInner) = journal.observer("inner")
        let (seeOuter, endOuter) = journal.observer("outer")
        // The rewriter passes "x" and then fails on its second output: the first output is still
        // handed out, then the error; stages before it were never told of an end (cancelled).
        let stream = EventStream([SSEEvent(data: "x"), SSEEvent(data: "y")])
            .observing(seeInner, finished: endInner)
            .translating { Doubler() }
            .rewriting { event in
                if event.data == "x2" { throw Boom(where_: "rewriter") }
                return event
            }
            .observing(seeOuter, finished: endOuter)
        let result = await collect(stream)
        #expect(result.events == ["x1"])
        #expect(result.error == "boom in rewriter")
        #expect(journal.all == ["inner saw x", "outer saw x1", "outer failed: boom in rewriter", "inner cancelled"])
    }

    @Test func anUncaughtTranslatorFailureIsThrownAndCaughtOneIsReplaced() async {
        let thrown = await collect(EventStream([SSEEvent(data: "bad")]).translating { Doubler() })
        #expect(thrown.events.isEmpty)
        #expect(thrown.error == "boom in translator")

        let replaced = await collect(EventStream([SSEEvent(data: "ok"), SSEEvent(data: "bad"), SSEEvent(data: "never")])
            .translating { Doubler() }
            .catchingErrors { _ in SSEEvent(data: "replaced") })
        #expect(replaced.events == ["ok1", "ok2", "replaced"])
        #expect(replaced.error == nil)
    }

    @Test func aClientLeavingMidStreamCancelsEveryObserverOnce() async throws {
        let journal = Journal()
        let (seeInner, endInner) = journal.observer("inner")
        let (seeOuter, endOuter) = journal.observer("outer")
        let stream = EventStream([SSEEvent(data: "a"), SSEEvent(data: "b")])
            .observing(seeInner, finished: endInner)
            .observing(seeOuter, finished: endOuter)
        do {
            var iterator = stream.makeAsyncIterator()
            #expect(try await iterator.next()?.data == "a")
        }
        #expect(Set(journal.all.suffix(2)) == ["inner cancelled", "outer cancelled"])
        #expect(journal.all.count == 4)
    }

    @Test func eachIterationGetsFreshStages() async {
        let stream = EventStream([SSEEvent(data: "a")]).translating { Doubler() }
        #expect(await collect(stream).events == ["a1", "a2", "end"])
        #expect(await collect(stream).events == ["a1", "a2", "end"])
    }
}
