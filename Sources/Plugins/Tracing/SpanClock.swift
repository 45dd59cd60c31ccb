#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Span times: OTLP wants wall-clock nanoseconds since the Unix epoch, but the wall clock can be
/// stepped (NTP, an admin) while a span is open. So a span reads the wall clock once, at its
/// start, and its end is that plus the monotonic time elapsed: a duration is never negative or
/// stretched by a step (as OpenTelemetry's SDKs anchor their clocks). Both reads are vDSO calls.
enum SpanClock {
    struct Instant: Sendable {
        /// Nanoseconds since the Unix epoch.
        var wall: UInt64
        /// Nanoseconds of the monotonic clock.
        var monotonic: UInt64
    }

    static func now() -> Instant {
        Instant(wall: read(CLOCK_REALTIME), monotonic: read(CLOCK_MONOTONIC))
    }

    /// The wall-clock time of now, measured from `start` on the monotonic clock.
    static func wallNanoseconds(since start: Instant) -> UInt64 {
        let monotonic = read(CLOCK_MONOTONIC)
        return start.wall &+ (monotonic >= start.monotonic ? monotonic - start.monotonic : 0)
    }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var time = timespec()
        clock_gettime(clock, &time)
        return UInt64(max(time.tv_sec, 0)) &* 1_000_000_000 &+ UInt64(max(time.tv_nsec, 0))
    }
}
