// Turning the process into a daemon the way spiped does: fork, let the child start a new
// session and take the pid file, and only then let the parent exit, so that when the command
// returns the daemon is already listening and its pid file exists.
import Glibc

/// Why the process could not be daemonized.
public enum DaemonError: Error, Equatable, Sendable {
    /// A system call failed (name of the call, errno).
    case systemCall(String, errno: Int32)
    /// The pid file could not be taken (see `PidFile.create`).
    case pidFile(PidFileError)

    /// A one-line explanation for error messages.
    public var message: String {
        switch self {
        case .systemCall(let name, let code): return "\(name): \(errnoDescription(code))"
        case .pidFile(let failure): return failure.description
        }
    }
}

/// The text of `strerror(code)`.
public func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

/// Daemonizing.
public enum Daemon {
    /// Detaches from the terminal: forks; the child calls `setsid()`, takes the pid file when a
    /// path is given (`PidFile.create`: locked, holding its pid), then tells the parent, which
    /// exits with status 0 at that point (status 1 if the child failed first: the child keeps
    /// the pipe to the parent open until it exits, so its error message is out before the
    /// parent returns). Returns only in the child, with the pid file, which the caller keeps
    /// until exit and then `remove()`s. Standard input, output and error stay open, as with
    /// the reference (use `--syslog` to stop writing warnings to stderr). Call it before any
    /// thread is started: only the calling thread survives `fork()`.
    public static func daemonize(pidFilePath: String?) throws(DaemonError) -> PidFile? {
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
        // Child. On failure the write end stays open (and closes when this process exits).
        close(readiness[0])
        guard setsid() != -1 else { throw .systemCall("setsid", errno: errno) }
        var pidFile: PidFile?
        if let pidFilePath {
            do {
                pidFile = try PidFile.create(path: pidFilePath)
            } catch {
                throw .pidFile(error)
            }
        }
        var ready: UInt8 = 1
        _ = write(readiness[1], &ready, 1)
        close(readiness[1])
        return pidFile
    }
}
