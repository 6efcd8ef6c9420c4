import Glibc

/// Reads `CLOCK_MONOTONIC`, the clock every benchmark interval is measured with.
enum MonotonicClock {
    /// Seconds since an arbitrary fixed point (boot); only differences are meaningful.
    static func now() -> Double {
        var time = timespec()
        // CLOCK_MONOTONIC cannot fail with a valid pointer, so the result is not checked.
        _ = clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
