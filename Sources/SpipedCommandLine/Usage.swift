// Usage and version texts of both programs.

/// The version both programs report with `-v` (the spiped release whose command line and wire
/// protocol they reproduce).
public let spipedVersion = "1.6.4"

/// Texts printed by `spiped`.
public enum SpipedUsage {
    /// The synopsis printed after a usage error.
    public static let text = """
        usage: spiped {-e | -d} -s <source socket> -t <target socket> -k <key file>
            [-DFj] [-b <bind address>] [-f | -g] [-n <max # connections>]
            [-o <connection timeout>] [-p <pidfile>] [-r <rtime> | -R] [--syslog]
            [-u {<username> | <:groupname> | <username:groupname>}]
               spiped -v

        """
    /// The line `-v` prints.
    public static let version = "spiped \(spipedVersion)\n"
}

/// Texts printed by `spipe`.
public enum SpipeUsage {
    /// The synopsis printed after a usage error.
    public static let text = """
        usage: spipe -t <target socket> -k <key file> [-b <bind address>] [-f | -g] [-j]
            [-o <connection timeout>]
               spipe -v

        """
    /// The line `-v` prints.
    public static let version = "spipe \(spipedVersion)\n"
}
