// Where the programs' messages go: standard error, or the system log once `--syslog` takes
// effect (after daemonizing). The switch is made once, before the proxy starts its threads,
// but the sink is read from those threads, so it is guarded by a mutex.
import Glibc
import SpipedSystem

/// Writes text to standard error in one `write` call (retrying on EINTR and short writes).
public func writeStandardError(_ text: String) {
    writeAll(text, to: STDERR_FILENO)
}

/// Writes text to standard output (`--help`, `--version`), retrying on EINTR and short writes.
public func writeStandardOutput(_ text: String) {
    writeAll(text, to: STDOUT_FILENO)
}

/// Writes all of `text` to `descriptor`; gives up silently on an error other than EINTR.
private func writeAll(_ text: String, to descriptor: CInt) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += written
    }
    bytes.removeAll()
}

/// The destination of a program's warnings: `program: message` on stderr until
/// `switchToSyslog()` is called, then the system log.
public final class WarningSink: @unchecked Sendable {
    /// The program name used as prefix and syslog identifier.
    public let program: String
    /// Guards `usesSyslog` (heap-allocated so its address never changes).
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    /// True once messages go to syslog.
    private var usesSyslog = false

    /// Creates a sink that writes to stderr.
    public init(program: String) {
        self.program = program
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// From now on, send messages to syslog (opened with the program name).
    public func switchToSyslog() {
        Syslog.open(identifier: program)
        pthread_mutex_lock(lock)
        usesSyslog = true
        pthread_mutex_unlock(lock)
    }

    /// True once messages go to syslog.
    public var isUsingSyslog: Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return usesSyslog
    }

    /// Emits one warning.
    public func warn(_ message: String) {
        pthread_mutex_lock(lock)
        let toSyslog = usesSyslog
        pthread_mutex_unlock(lock)
        if toSyslog {
            Syslog.log(.warning, message)
        } else {
            writeStandardError("\(program): \(message)\n")
        }
    }
}
