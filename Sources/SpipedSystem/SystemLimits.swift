import Glibc

/// Machine and process limits read from the kernel.
public enum SystemLimits {
    /// `sysconf(_SC_NPROCESSORS_ONLN)`: online CPUs (at least 1).
    public static var onlineProcessorCount: Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The CPUs this process may run on (`sched_getaffinity`: what `taskset`, a container's
    /// cpuset or systemd's `CPUAffinity=` leave it), at most the online CPUs, at least 1; the
    /// online count when the mask cannot be read.
    public static var usableProcessorCount: Int {
        let online = onlineProcessorCount
        // 128 bytes is glibc's cpu_set_t (1024 CPUs); larger machines need a larger mask (EINVAL).
        for byteCount in [128, 1024, 8192] {
            var mask = [UInt64](repeating: 0, count: byteCount / 8)
            let result = mask.withUnsafeMutableBytes { system_sched_getaffinity(0, byteCount, $0.baseAddress!) }
            if result == 0 { return max(1, min(online, mask.reduce(0) { $0 + $1.nonzeroBitCount })) }
            if errno != EINVAL { break }
        }
        return online
    }

    /// `getrlimit(RLIMIT_NOFILE)`: the soft limit on open file descriptors (nil if unlimited or unknown).
    public static var openFileLimit: Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max // RLIM_INFINITY
        else { return nil }
        return Int(limit.rlim_cur)
    }
}

/// `CLOCK_MONOTONIC`: time that never jumps, for deadlines.
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary fixed point.
    public static var nanoseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}
