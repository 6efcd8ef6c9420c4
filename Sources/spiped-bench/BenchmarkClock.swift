import Glibc

/// The clock benchmark intervals are measured with.
enum BenchmarkClock: String, Sendable {
    /// `CLOCK_MONOTONIC`: elapsed real time (the default).
    case monotonic
    /// `CLOCK_THREAD_CPUTIME_ID`: CPU time of the measuring thread only, which is steadier than
    /// real time on a machine that other work is loading (time spent descheduled is not counted).
    case threadCPU = "thread-cpu"

    /// Seconds since an arbitrary fixed point; only differences are meaningful.
    func now() -> Double {
        var time = timespec()
        // Both clocks always exist on Linux, so with a valid pointer the call cannot fail.
        _ = clock_gettime(self == .monotonic ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
