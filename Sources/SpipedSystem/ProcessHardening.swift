// Process-wide protections for a process that holds a key: no core dumps, no ptrace by other
// processes of the same user.
import Glibc

/// `int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
/// unsigned long arg5)` — prctl(2). The C prototype is variadic, which Swift cannot import; every
/// argument is an integer, which the x86-64 and AArch64 Linux calling conventions pass the same
/// way to a variadic function, and glibc reads them as `unsigned long`.
@_extern(c, "prctl") func system_prctl(_ option: Int32, _ argument2: UInt, _ argument3: UInt, _ argument4: UInt, _ argument5: UInt) -> Int32

/// Hardening of the whole process.
public enum ProcessHardening {
    /// `PR_GET_DUMPABLE` from <linux/prctl.h>.
    static let getDumpable: Int32 = 3
    /// `PR_SET_DUMPABLE` from <linux/prctl.h>.
    static let setDumpable: Int32 = 4

    /// Makes the process non-dumpable: `prctl(PR_SET_DUMPABLE, 0)`, then checks it took.
    ///
    /// A non-dumpable process writes no core file whatever `RLIMIT_CORE` and
    /// `fs.suid_dumpable` say, cannot be attached to with ptrace (or read through
    /// /proc/PID/mem) by processes of the same user without `CAP_SYS_PTRACE`, and its
    /// /proc/PID files belong to root. The kernel resets the flag to `fs.suid_dumpable` whenever
    /// the effective or filesystem ids change, so call this again after dropping privileges.
    /// The flag survives `fork` (daemonizing), not `execve`.
    public static func disableCoreDumps() throws(SystemError) {
        guard system_prctl(setDumpable, 0, 0, 0, 0) == 0 else {
            throw SystemError("prctl(PR_SET_DUMPABLE)", Errno(rawValue: errno))
        }
        guard !isDumpable else {
            throw SystemError("prctl(PR_SET_DUMPABLE)", Errno(rawValue: EPERM))
        }
    }

    /// `prctl(PR_GET_DUMPABLE)` is not 0: the process may dump core and be traced by its user.
    public static var isDumpable: Bool {
        system_prctl(getDumpable, 0, 0, 0, 0) != 0
    }
}
