import NIOCore

/// A streamed upstream body. Back-pressured: past `highWatermark` unread chunks the transport
/// stops reading from the provider (curl pauses the transfer, the NIO transport stops asking its
/// channel to read) until the reader catches up; when the reader goes away the transfer is
/// aborted, which closes the provider connection.
public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, UpstreamBodyDelegate
    >
    typealias Source = Producer.Source

    private let producer: Producer

    init(_ producer: Producer) { self.producer = producer }

    /// A body fed by `source`, whose reader's demand goes to `transfer`.
    static func make(for transfer: any UpstreamBodyFeeder) -> (body: UpstreamBody, source: Source) {
        let producer = Producer.makeSequence(
            elementType: ByteBuffer.self,
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8),
            finishOnDeinit: false,
            delegate: UpstreamBodyDelegate(feeder: transfer)
        )
        return (UpstreamBody(producer.sequence), producer.source)
    }

    public func makeAsyncIterator() -> Iterator { Iterator(base: producer.makeAsyncIterator()) }

    public struct Iterator: AsyncIteratorProtocol {
        var base: Producer.AsyncIterator
        public mutating func next() async throws -> ByteBuffer? { try await base.next(isolation: #isolation) }
    }
}

/// A transfer that feeds an `UpstreamBody`: told when its reader wants more, and when it is gone.
protocol UpstreamBodyFeeder: AnyObject, Sendable {
    /// The reader caught up: read from the provider again.
    func readerWantsMore()
    /// The reader dropped the body or its task was cancelled: abort the transfer.
    func readerWentAway()
}

/// Relays the reader's demand to the transfer.
struct UpstreamBodyDelegate: NIOAsyncSequenceProducerDelegate {
    let feeder: any UpstreamBodyFeeder

    func produceMore() { feeder.readerWantsMore() }
    func didTerminate() { feeder.readerWentAway() }
}
