import NIOCore

/// A streamed upstream body. Back-pressured: past `highWatermark` unread chunks the curl transfer
/// pauses (`CURL_WRITEFUNC_PAUSE`) until the reader catches up; when the reader goes away the
/// transfer is aborted, which closes the provider connection.
public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, UpstreamBodyDelegate
    >
    typealias Source = Producer.Source

    private let producer: Producer

    init(_ producer: Producer) { self.producer = producer }

    public func makeAsyncIterator() -> Iterator { Iterator(base: producer.makeAsyncIterator()) }

    public struct Iterator: AsyncIteratorProtocol {
        var base: Producer.AsyncIterator
        public mutating func next() async throws -> ByteBuffer? { try await base.next() }
    }
}

/// Relays the reader's demand to the curl thread.
struct UpstreamBodyDelegate: NIOAsyncSequenceProducerDelegate {
    let transfer: UpstreamTransfer

    func produceMore() { transfer.client.enqueue(.resume(transfer)) }
    func didTerminate() { transfer.client.cancel(transfer, .cancelled) }
}
