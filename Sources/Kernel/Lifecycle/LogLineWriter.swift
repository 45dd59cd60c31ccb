import Foundation
import NIOCore

/// Writes log lines to a file descriptor from a thread of its own, so that a reader that falls
/// behind (a stalled journald, a pipe nobody drains) never stops an event loop: `write(2)` to a
/// full pipe blocks. Lines wait in one buffer and leave in batches, one `write(2)` per batch. The
/// buffer is bounded: when it is full, new lines are dropped and counted, and once the reader
/// takes lines again a notice line says how many were lost. Queued lines are written at exit.
public final class LogLineWriter: @unchecked Sendable {
    /// The process's standard output, where `JSONLogHandler` writes.
    public static let standardOutput = LogLineWriter(fileDescriptor: STDOUT_FILENO) { dropped in
        JSONLogHandler.line(level: .warning, message: "log lines dropped: the reader of standard output fell behind",
                            label: "sluice", metadata: ["dropped_lines": .stringConvertible(dropped)])
    }

    private let fileDescriptor: Int32
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
    private static let linger: UInt32 = 5_000  // µs

    /// - Parameters:
    ///   - limit: the most bytes waiting; 4 MiB is some 10,000 access-log lines.
    ///   - droppedNotice: the line that reports a number of dropped lines.
    public init(fileDescriptor: Int32, limit: Int = 4 << 20, droppedNotice: @escaping @Sendable (Int) -> ByteBuffer) {
        self.fileDescriptor = fileDescriptor
        _limit = limit
        self.droppedNotice = droppedNotice
        queued = ByteBufferAllocator().buffer(capacity: 16 << 10)
    }

    /// The most bytes that may wait; lines beyond it are dropped and counted.
    public var limit: Int {
        get { condition.withLock { _limit } }
        set { condition.withLock { _limit = newValue } }
    }

    /// Queues one whole line (its newline included) and returns at once.
    public func write(_ line: ByteBuffer) {
        condition.lock()
        defer { condition.unlock() }
        guard queued.readableBytes + line.readableBytes <= _limit else {
            dropped += 1
            return
        }
        var line = line
        queued.writeBuffer(&line)
        if !started {
            started = true
            let thread = Thread { [self] in run() }
            thread.name = "sluice-log"
            thread.start()
            if self === Self.standardOutput { atexit { LogLineWriter.standardOutput.flush(timeout: .seconds(2)) } }
        }
        if writerIsWaiting { flushers > 0 ? condition.broadcast() : condition.signal() }
    }

    /// Returns once every line queued so far is written, or after `timeout` if the reader is stuck.
    public func flush(timeout: Duration) {
        let deadline = Date.now.addingTimeInterval(timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        flushers += 1
        defer { flushers -= 1 }
        while started, queued.readableBytes > 0 || batchInFlight {
            if writerIsWaiting { condition.broadcast() }
            if !condition.wait(until: deadline) { return }
        }
    }

    private func run() {
        var batch = ByteBufferAllocator().buffer(capacity: 16 << 10)
        condition.lock()
        while true {
            while queued.readableBytes == 0, dropped == 0 {
                writerIsWaiting = true
                condition.wait()
                writerIsWaiting = false
            }
            // Let the lines of the next few milliseconds join the batch: under load a line comes
            // every few hundred microseconds, and waking this thread for each would cost a context
            // switch per request. Nobody waits for a log line, bar `flush` at exit.
            if flushers == 0 {
                condition.unlock()
                usleep(Self.linger)
                condition.lock()
            }
            swap(&batch, &queued)
            let lost = dropped
            dropped = 0
            batchInFlight = true
            condition.unlock()

            writeAll(batch)
            if lost > 0 { writeAll(droppedNotice(lost)) }
            // A burst may have grown the buffer; do not keep megabytes for the quiet that follows.
            if batch.capacity > 64 << 10 { batch = ByteBufferAllocator().buffer(capacity: 16 << 10) } else { batch.clear() }

            condition.lock()
            batchInFlight = false
            if flushers > 0 { condition.broadcast() }
        }
    }

    private func writeAll(_ bytes: ByteBuffer) {
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
}
