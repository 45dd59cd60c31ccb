import NIOCore

/// One timer on an event loop for many deadlines that mostly move later: a connection's, which
/// moves with every request, or a loop's upstream exchanges', one per request. It is scheduled no
/// later than the earliest deadline it has been told of; when it fires, its owner does what is due
/// and names the next deadline, and it schedules itself again for that.
///
/// A deadline later than the one already scheduled costs a comparison. A timer per deadline would
/// cost a scheduled task, its promise and future, and a heap entry to insert and remove: more than
/// the rest of a short request's bookkeeping.
///
/// Loop-confined. The scheduled task holds the check until it fires or is cancelled; the owner
/// cancels it when it goes.
final class DeadlineCheck {
    private let loop: any EventLoop
    /// Does what is due at the time given and returns the next deadline, if there is one.
    private let fire: (NIODeadline) -> NIODeadline?
    private var scheduled: Scheduled<Void>?
    private var scheduledAt = NIODeadline.distantFuture

    init(loop: any EventLoop, fire: @escaping (NIODeadline) -> NIODeadline?) {
        self.loop = loop
        self.fire = fire
    }

    /// Makes sure the check runs no later than `deadline`.
    func ensure(by deadline: NIODeadline) {
        guard scheduled == nil || deadline < scheduledAt else { return }
        scheduled?.cancel()
        scheduledAt = deadline
        let check = NIOLoopBound(self, eventLoop: loop)
        scheduled = loop.scheduleTask(deadline: deadline) { check.value.run() }
    }

    func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }

    private func run() {
        scheduled = nil
        if let next = fire(loop.now) { ensure(by: next) }
    }
}
