import Glibc

// Linux-only calls whose headers (<sys/epoll.h>, <sys/eventfd.h>, <sys/signalfd.h>) are not part
// of Swift's Glibc module. They are declared here with their C names and C calling convention
// (`@_extern(c)`), so no C file or module map is needed. Each declaration matches the prototype
// in the man page named beside it; the constants are the values from the Linux x86-64 headers.

/// `int epoll_create1(int flags)` — epoll_create(2).
@_extern(c, "epoll_create1") func system_epoll_create1(_ flags: Int32) -> Int32
/// `int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)` — epoll_ctl(2).
@_extern(c, "epoll_ctl") func system_epoll_ctl(_ epfd: Int32, _ op: Int32, _ fd: Int32, _ event: UnsafeMutableRawPointer?) -> Int32
/// `int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)` — epoll_wait(2).
@_extern(c, "epoll_wait") func system_epoll_wait(_ epfd: Int32, _ events: UnsafeMutableRawPointer?, _ maxevents: Int32, _ timeout: Int32) -> Int32
/// `int eventfd(unsigned int initval, int flags)` — eventfd(2).
@_extern(c, "eventfd") func system_eventfd(_ initial: UInt32, _ flags: Int32) -> Int32
/// `int signalfd(int fd, const sigset_t *mask, int flags)` — signalfd(2).
@_extern(c, "signalfd") func system_signalfd(_ fd: Int32, _ mask: UnsafePointer<sigset_t>, _ flags: Int32) -> Int32

/// `int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags)` — accept(2)
/// (a GNU extension, hidden from Swift's Glibc module).
@_extern(c, "accept4") func system_accept4(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?, _ flags: Int32) -> Int32
/// `int sched_getaffinity(pid_t pid, size_t cpusetsize, cpu_set_t *mask)` — sched_getaffinity(2)
/// (a GNU extension, hidden from Swift's Glibc module); `mask` is a bit set of `cpusetsize` bytes.
@_extern(c, "sched_getaffinity") func system_sched_getaffinity(_ pid: Int32, _ byteCount: Int, _ mask: UnsafeMutableRawPointer) -> Int32
/// `pid_t gettid(void)` — gettid(2).
@_extern(c, "gettid") func system_gettid() -> Int32

/// `int pthread_setname_np(pthread_t thread, const char *name)` — pthread_setname_np(3).
@_extern(c, "pthread_setname_np") func system_pthread_setname_np(_ thread: pthread_t, _ name: UnsafePointer<CChar>) -> Int32

/// `unsigned long getauxval(unsigned long type)` — getauxval(3) (<sys/auxv.h>).
@_extern(c, "getauxval") func system_getauxval(_ type: UInt) -> UInt
/// `int __nss_configure_lookup(const char *db, const char *service_line)` — glibc's <nss.h>:
/// replaces the /etc/nsswitch.conf line of one database for this process.
@_extern(c, "__nss_configure_lookup") func system_nss_configure_lookup(_ database: UnsafePointer<CChar>, _ services: UnsafePointer<CChar>) -> Int32

/// Constants from <sys/epoll.h>, <sys/eventfd.h> and <sys/signalfd.h>.
enum LinuxConstants {
    /// `EPOLL_CLOEXEC` (== `O_CLOEXEC`).
    static let epollCloseOnExec: Int32 = 0o2000000
    /// `EPOLL_CTL_ADD`.
    static let epollControlAdd: Int32 = 1
    /// `EPOLL_CTL_DEL`.
    static let epollControlDelete: Int32 = 2
    /// `EPOLL_CTL_MOD`.
    static let epollControlModify: Int32 = 3
    /// `sizeof(struct epoll_event)`: `uint32_t events; epoll_data_t data;` is packed on x86-64
    /// only (glibc's `__EPOLL_PACKED`): 12 bytes there, 16 with natural alignment elsewhere
    /// (aarch64, riscv64, ...).
    #if arch(x86_64)
    static let epollEventByteCount = 12
    #else
    static let epollEventByteCount = 16
    #endif
    /// Offset of `data` in `struct epoll_event`: right after `events` when packed, else 8.
    static let epollEventDataOffset = epollEventByteCount - 8
    /// `EFD_CLOEXEC` / `SFD_CLOEXEC` (== `O_CLOEXEC`).
    static let descriptorCloseOnExec: Int32 = 0o2000000
    /// `EFD_NONBLOCK` / `SFD_NONBLOCK` (== `O_NONBLOCK`).
    static let descriptorNonBlocking: Int32 = 0o4000
    /// `sizeof(struct signalfd_siginfo)`; its first field is `uint32_t ssi_signo`.
    static let signalInfoByteCount = 128
}

@_extern(c, "malloc_trim") func system_malloc_trim(_ pad: Int) -> Int32

/// The process's heap, as glibc's allocator keeps it.
public enum ProcessMemory {
    /// Gives the allocator's free memory back to the kernel (glibc `malloc_trim(0)`): after
    /// start-up (option parsing, self-tests, the engine measurement, key loading) the freed
    /// buffers would otherwise stay resident for the daemon's whole life.
    public static func returnFreeHeapToSystem() {
        _ = system_malloc_trim(0)
    }
}
