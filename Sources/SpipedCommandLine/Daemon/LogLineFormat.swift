// How the daemon's log lines look where they end up: with a timestamp and a severity on a
// terminal or in a file; with a `<N>` priority prefix (which journald turns into the entry's
// priority) and no timestamp under journald; as plain text with a priority in syslog.
import Glibc
import SpipedProxy
import SpipedSystem

/// Formats and writes the engine's log lines.
public enum LogLineFormat {
    /// Where standard error goes, as far as the format is concerned.
    enum Destination {
        /// journald's stream (`$JOURNAL_STREAM` names standard error's device and inode).
        case journal
        /// A terminal, a file or a pipe.
        case plain
    }

    /// A sink for `ProxyLog` that writes through `warnings` (standard error, or syslog once
    /// switched), formatted for the destination.
    public static func sink(for warnings: WarningSink) -> @Sendable (ProxyLogLevel, String) -> Void {
        let destination = standardErrorDestination()
        let program = warnings.program
        return { level, message in
            if warnings.isUsingSyslog {
                Syslog.log(syslogPriority(level), message)
                return
            }
            let line: String
            switch destination {
            case .journal:
                line = "<\(journalPriority(level))>\(program): \(message)\n"
            case .plain:
                line = "\(timestamp()) \(program): \(severity(level)): \(message)\n"
            }
            writeStandardError(line)
        }
    }

    static func severity(_ level: ProxyLogLevel) -> String {
        switch level {
        case .debug: return "debug"
        case .info: return "info"
        case .notice: return "notice"
        case .warning: return "warning"
        case .error: return "error"
        }
    }

    static func journalPriority(_ level: ProxyLogLevel) -> Int {
        switch level {
        case .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        }
    }

    static func syslogPriority(_ level: ProxyLogLevel) -> Syslog.Priority {
        switch level {
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error: return .error
        }
    }

    /// journald sets `JOURNAL_STREAM=device:inode` for the stream it reads; standard error is
    /// that stream when its `fstat` gives the same pair.
    static func standardErrorDestination() -> Destination {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return .plain }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return .plain }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return .plain }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode ? .journal : .plain
    }

    /// UTC time as `2026-12-02T21:50:00.123Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let milliseconds = Int(now.tv_nsec / 1_000_000)
        let fraction = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }
}
