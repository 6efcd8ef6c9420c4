import Glibc

/// Machine and process limits read from the kernel.
public enum SystemLimits {
    /// `sysconf(_SC_NPROCESSORS_ONLN)`: online CPUs (at least 1).
    public static var onlineProcessorCount: Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The CPUs this process may run on: the `Cpus_allowed` mask of `/proc/self/status`
    /// (what `taskset`, a container's cpuset or systemd's `CPUAffinity=` leave it), at most the
    /// online CPUs, at least 1. The online count when the mask cannot be read.
    public static var usableProcessorCount: Int {
        let online = onlineProcessorCount
        guard let status = readSmallFile("/proc/self/status"),
              let allowed = allowedProcessorCount(inStatus: status) else { return online }
        return max(1, min(online, allowed))
    }

    /// The number of bits set in the `Cpus_allowed:` line of a `/proc/<pid>/status` text
    /// (comma-separated 32-bit hex words, e.g. `ff,ffffffff`); nil without such a line or
    /// when a character in it is neither a hex digit nor a comma.
    public static func allowedProcessorCount(inStatus status: [UInt8]) -> Int? {
        let key = Array("Cpus_allowed:".utf8)
        var lineStart = 0
        while lineStart < status.count {
            var lineEnd = lineStart
            while lineEnd < status.count, status[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            if lineEnd - lineStart > key.count, Array(status[lineStart..<lineStart + key.count]) == key {
                var count = 0
                var digits = 0
                for byte in status[(lineStart + key.count)..<lineEnd] {
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): count += Int(byte - UInt8(ascii: "0")).nonzeroBitCount
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): count += Int(byte - UInt8(ascii: "a") + 10).nonzeroBitCount
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): count += Int(byte - UInt8(ascii: "A") + 10).nonzeroBitCount
                    case UInt8(ascii: ","), UInt8(ascii: " "), UInt8(ascii: "\t"): continue
                    default: return nil
                    }
                    digits += 1
                }
                return digits > 0 ? count : nil
            }
            lineStart = lineEnd + 1
        }
        return nil
    }

    /// The whole content of a small file (up to 64 KiB, as `/proc` files are), or nil.
    private static func readSmallFile(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while content.count < 65536 {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            content += chunk[0..<count]
        }
        return content
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
