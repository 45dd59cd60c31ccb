import CSystemd
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Hands log records to their destination from a thread of its own, so that a reader that falls
/// behind (a stalled journald, a pipe nobody drains) never stops an event loop: `write(2)` to a
/// full pipe blocks, and so does `sd_journal_sendv` when journald's queue is full. Records wait
/// in one buffer and leave in batches. The buffer is bounded: when it is full, new records are
/// dropped and counted, and once the reader takes records again a notice says how many were
/// lost. Queued records are delivered at exit.
///
/// The thread starts with the first record. The `Gateway` flushes the writers as the last step of
/// its shutdown, so that its last words are out when its `run` returns; the program that set up
/// logging stops them (`stop`) once nothing it runs logs any more, and records written after that
/// are delivered on the writer's caller's thread.
public final class LogWriter: @unchecked Sendable {
    /// The process's standard output, where `JSONLogHandler` writes its lines.
    public static let standardOutput = LogWriter(name: "sluice-log", deliver: { writeAll($0, to: STDOUT_FILENO) }) { dropped in
        JSONLogHandler.line(level: .warning, message: "log lines dropped: the reader of standard output fell behind",
                            label: "sluice", metadata: ["dropped_lines": .stringConvertible(dropped)])
    }

    /// The systemd journal, where `JournalLogHandler` sends its records (see `journalRecord`).
    public static let journal = LogWriter(name: "sluice-journal", deliver: sendToJournal) { dropped in
        journalRecord(["MESSAGE=log records dropped: journald fell behind", "PRIORITY=4", "SYSLOG_IDENTIFIER=sluice",
                       "LOGGER=sluice", "DROPPED_RECORDS=\(dropped)"])
    }

    private let name: String
    private let deliver: @Sendable (ByteBuffer) -> Void
    private let droppedNotice: @Sendable (Int) -> ByteBuffer
    // All below are guarded by `condition`.
    private let condition = NSCondition()
    private var _limit: Int
    private var queued: ByteBuffer
    private var dropped = 0
    private var writerIsWaiting = false
    private var batchInFlight = false
    private var flushers = 0
    private var started = false
    private var stopRequested = false
    /// The thread has ended (after `stop`): records are delivered by whoever writes them.
    private var stopped = false
    private static let linger: UInt32 = 5_000  // µs

    /// - Parameters:
    ///   - name: the thread's.
    ///   - limit: the most bytes waiting; 4 MiB is some 10,000 access-log lines.
    ///   - deliver: sends a batch of records, one after another in the buffer.
    ///   - droppedNotice: the record that reports a number of dropped records.
    public init(name: String, limit: Int = 4 << 20, deliver: @escaping @Sendable (ByteBuffer) -> Void,
                droppedNotice: @escaping @Sendable (Int) -> ByteBuffer) {
        self.name = name
        self.deliver = deliver
        _limit = limit
        self.droppedNotice = droppedNotice
        queued = ByteBufferAllocator().buffer(capacity: 16 << 10)
    }

    /// The most bytes that may wait; records beyond it are dropped and counted.
    public var limit: Int {
        get { condition.withLock { _limit } }
        set { condition.withLock { _limit = newValue } }
    }

    /// Queues one whole record (a line with its newline, for stdout). Returns at once, or with
    /// `waitForDelivery` (for a critical record: the process may be about to stop) once it is out.
    public func write(_ record: ByteBuffer, waitForDelivery: Bool = false) {
        queue(record)
        if waitForDelivery { flush(timeout: .seconds(2)) }
    }

    private func queue(_ record: ByteBuffer) {
        condition.lock()
        defer { condition.unlock() }
        if stopped {
            deliver(record)
            return
        }
        guard queued.readableBytes + record.readableBytes <= _limit else {
            dropped += 1
            return
        }
        var record = record
        queued.writeBuffer(&record)
        if !started {
            started = true
            Thread.start(named: name) { [self] in run() }
            Self.flushedAtExit.withLockedValue { $0.append(self) }
        }
        if writerIsWaiting { flushers > 0 ? condition.broadcast() : condition.signal() }
    }

    /// Delivers what every started writer holds (see `flush`).
    public static func flushAll(timeout: Duration) {
        for writer in flushedAtExit.withLockedValue({ $0 }) { writer.flush(timeout: timeout) }
    }

    /// Delivers what is queued (within `timeout`) and ends the thread; later records are
    /// delivered on their caller's thread. Returns once the thread has ended, or after `timeout`.
    public func stop(timeout: Duration) {
        let deadline = Date.now.addingTimeInterval(timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        guard started else {
            stopped = true  // never started: later records go out on their caller's thread too
            return
        }
        stopRequested = true
        condition.broadcast()
        while !stopped {
            if !condition.wait(until: deadline) { return }
        }
    }

    /// Whether the writer's thread is running (for tests).
    public var hasThread: Bool { condition.withLock { started && !stopped } }

    /// Every writer that has started; `exit` delivers what they still hold.
    private static let flushedAtExit: NIOLockedValueBox<[LogWriter]> = {
        atexit { for writer in LogWriter.flushedAtExit.withLockedValue({ $0 }) { writer.flush(timeout: .seconds(2)) } }
        return NIOLockedValueBox([])
    }()

    /// Returns once every record queued so far is delivered, or after `timeout` if the reader is stuck.
    public func flush(timeout: Duration) {
        let deadline = Date.now.addingTimeInterval(timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        flushers += 1
        defer { flushers -= 1 }
        while started, !stopped, queued.readableBytes > 0 || batchInFlight {
            if writerIsWaiting { condition.broadcast() }
            if !condition.wait(until: deadline) { return }
        }
    }

    private func run() {
        var batch = ByteBufferAllocator().buffer(capacity: 16 << 10)
        condition.lock()
        while true {
            while queued.readableBytes == 0, dropped == 0 {
                if stopRequested {
                    stopped = true
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                writerIsWaiting = true
                condition.wait()
                writerIsWaiting = false
            }
            // Let the records of the next few milliseconds join the batch: under load one comes
            // every few hundred microseconds, and waking this thread for each would cost a context
            // switch per request. Nobody waits for a log record, bar `flush`.
            if flushers == 0, !stopRequested {
                condition.unlock()
                usleep(Self.linger)
                condition.lock()
            }
            swap(&batch, &queued)
            let lost = dropped
            dropped = 0
            batchInFlight = true
            condition.unlock()

            deliver(batch)
            if lost > 0 { deliver(droppedNotice(lost)) }
            // A burst may have grown the buffer; do not keep megabytes for the quiet that follows.
            if batch.capacity > 64 << 10 { batch = ByteBufferAllocator().buffer(capacity: 16 << 10) } else { batch.clear() }

            condition.lock()
            batchInFlight = false
            if flushers > 0 { condition.broadcast() }
        }
    }

    /// Writes all of `bytes` to `fileDescriptor`, or as much as a reader still takes.
    static func writeAll(_ bytes: ByteBuffer, to fileDescriptor: Int32) {
        bytes.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0, errno == EINTR { continue }
                if written <= 0 { return }  // the reader is gone: nothing else can be done with the lines
                offset += written
            }
        }
    }

    /// A journal record: its fields (`NAME=value`), each with its length, after their count.
    public static func journalRecord(_ fields: [String]) -> ByteBuffer {
        var record = ByteBufferAllocator().buffer(capacity: fields.reduce(4) { $0 + 4 + $1.utf8.count })
        record.writeInteger(UInt32(fields.count))
        for field in fields {
            record.writeInteger(UInt32(field.utf8.count))
            record.writeString(field)
        }
        return record
    }

    /// Sends each record of a batch to the journal, its fields pointing into the batch (no copy).
    static func sendToJournal(_ batch: ByteBuffer) {
        var batch = batch
        var vectors: [iovec] = []
        while let count = batch.readInteger(as: UInt32.self) {
            vectors.removeAll(keepingCapacity: true)
            let recordLength = batch.withUnsafeReadableBytes { raw in
                var offset = 0
                for _ in 0..<count {
                    let length = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self).bigEndian)
                    vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + offset + 4), iov_len: length))
                    offset += 4 + length
                }
                _ = sd_journal_sendv(&vectors, Int32(vectors.count))
                return offset
            }
            batch.moveReaderIndex(forwardBy: recordLength)
        }
    }
}
