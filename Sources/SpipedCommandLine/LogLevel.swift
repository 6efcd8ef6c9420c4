// The log levels of `--log-level` (and of `log-level =` in spiped.conf(5)).

/// How much `spiped` logs; each level includes the ones above it.
public enum SpipedLogLevel: String, CaseIterable, Equatable, Sendable {
    /// Only errors that affect a whole pipe or the process.
    case error
    /// Errors, warnings (a connection failed, a limit was reached) and the start-up, reload and
    /// shutdown lines: the default.
    case warning
    /// Also one line per finished connection.
    case info
    /// Also details meant for debugging.
    case debug

    /// The level used when none is given.
    public static let standard = SpipedLogLevel.warning

    /// Parses a level name as typed (`error`, `warning`, `info`, `debug`); nil for anything else.
    public init?(name: String) {
        self.init(rawValue: name)
    }
}
