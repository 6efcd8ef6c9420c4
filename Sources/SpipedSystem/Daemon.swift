// Turning the process into a daemon the way spiped does: fork, let the child start a new
// session and write the pid file, and only then let the parent exit, so that when the command
// returns the daemon is already listening and its pid file exists.
import Glibc

/// Why the process could not be daemonized.
public enum DaemonError: Error, Equatable, Sendable {
    /// A system call failed (name of the call, errno).
    case systemCall(String, errno: Int32)
    /// The pid file could not be written (path, errno).
    case pidFileUnwritable(path: String, errno: Int32)

    /// A one-line explanation for error messages.
    public var message: String {
        switch self {
        case .systemCall(let name, let code): return "\(name): \(errnoDescription(code))"
        case .pidFileUnwritable(let path, let code): return "Cannot write pid file \(path): \(errnoDescription(code))"
        }
    }
}

/// The text of `strerror(code)`.
public func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

/// Daemonizing and pid files.
public enum Daemon {
    /// Detaches from the terminal: forks; the child calls `setsid()`, writes its pid (decimal) to `pidFilePath` when one is given, then tells the parent, which
    /// exits with status 0 at that point (status 1 if the child failed first). Returns only in
    /// the child. Standard input, output and error stay open, as with the reference (use
    /// `--syslog` to stop writing warnings to stderr). Call it before any thread is started:
    /// only the calling thread survives `fork()`.
    public static func daemonize(pidFilePath: String?) throws(DaemonError) {
        var readiness: [Int32] = [-1, -1]
        guard pipe(&readiness) == 0 else { throw .systemCall("pipe", errno: errno) }
        let child = fork()
        if child < 0 {
            let code = errno
            close(readiness[0])
            close(readiness[1])
            throw .systemCall("fork", errno: code)
        }
        if child > 0 {
            // Parent: wait for one byte (child ready) or end of file (child failed).
            close(readiness[1])
            var byte: UInt8 = 0
            var count: Int
            repeat { count = read(readiness[0], &byte, 1) } while count < 0 && errno == EINTR
            _exit(count == 1 ? 0 : 1)
        }
        // Child.
        close(readiness[0])
        defer { close(readiness[1]) }
        guard setsid() != -1 else { throw .systemCall("setsid", errno: errno) }
        if let pidFilePath {
            try writePidFile(path: pidFilePath)
        }
        var ready: UInt8 = 1
        _ = write(readiness[1], &ready, 1)
    }

    /// Writes `getpid()` in decimal, without a newline (as the reference does), to `path`
    /// (created mode 0644, or truncated).
    public static func writePidFile(path: String) throws(DaemonError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .pidFileUnwritable(path: path, errno: errno) }
        defer { close(descriptor) }
        let bytes = Array("\(getpid())".utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                throw .pidFileUnwritable(path: path, errno: errno)
            }
            written += result
        }
    }
}
