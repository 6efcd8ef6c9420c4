// Sending warnings to the system log (spiped's `--syslog`). C's `syslog` is variadic and cannot
// be called from Swift, so messages go through `vsyslog` with a fixed "%s" format: the message
// text is never interpreted as a format string.
import Glibc

/// The system logger, opened once per process.
public enum Syslog {
    /// Message priorities used by spiped.
    public enum Priority: Sendable {
        /// `LOG_WARNING`: something went wrong with one connection or at start-up.
        case warning
        /// `LOG_ERR`: the program is about to stop.
        case error
        /// `LOG_INFO`: routine information.
        case info
        /// `LOG_NOTICE`: start-up, reload and shutdown.
        case notice
        /// `LOG_DEBUG`: details for debugging.
        case debug

        /// The C constant.
        var rawValue: Int32 {
            switch self {
            case .warning: return LOG_WARNING
            case .error: return LOG_ERR
            case .info: return LOG_INFO
            case .notice: return LOG_NOTICE
            case .debug: return LOG_DEBUG
            }
        }
    }

    /// Opens the log with `identifier` (the program name), the process id in each line, and
    /// facility `LOG_DAEMON`. The identifier string is copied and kept for the life of the
    /// process, because `openlog` keeps the pointer.
    public static func open(identifier: String) {
        let kept = strdup(identifier)
        openlog(kept, LOG_PID | LOG_NDELAY, LOG_DAEMON)
    }

    /// Writes one message; `%` in the message is not interpreted.
    public static func log(_ priority: Priority, _ message: String) {
        message.withCString { text in
            withVaList([text]) { arguments in
                vsyslog(priority.rawValue, "%s", arguments)
            }
        }
    }
}
