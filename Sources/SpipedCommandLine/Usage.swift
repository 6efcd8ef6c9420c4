// Usage, help and version texts of both programs.

/// The version both programs report with `-v` and `--version` (the spiped release whose command
/// line and wire protocol they reproduce).
public let spipedVersion = "1.6.4"

/// One line of `--help`: an option as it is typed and what it does, ending with its default.
public struct OptionHelp: Equatable, Sendable {
    /// The option and its argument, e.g. `-n <count>`.
    public let synopsis: String
    /// What the option does and, in parentheses, its default.
    public let description: String

    /// Formats help lines: a heading line per group, then one line per option with the
    /// descriptions aligned in one column.
    static func render(header: String, groups: [(title: String, options: [OptionHelp])]) -> String {
        let width = groups.flatMap { $0.options }.map { $0.synopsis.count }.max() ?? 0
        var text = header
        for group in groups {
            text += "\n\(group.title):\n"
            for option in group.options {
                let padding = String(repeating: " ", count: width - option.synopsis.count)
                text += "  \(option.synopsis)\(padding)  \(option.description)\n"
            }
        }
        return text
    }
}

/// Texts printed by `spiped`.
public enum SpipedUsage {
    /// The synopsis printed after a usage error.
    public static let text = """
        usage: spiped {-e | -d} -s <source socket> -t <target socket> -k <key file>
            [-DFj] [-b <bind address>] [-f | -g] [-n <max # connections>]
            [-o <connection timeout>] [-p <pidfile>] [-r <rtime> | -R] [--syslog]
            [-u {<username> | <:groupname> | <username:groupname>}]
            [--log-level <level>] [--metrics <address>] [--drain-timeout <seconds>]
            [--pool <count> [--pool-max-age <seconds>]]
            [--socket-mode <octal mode>] [--socket-group <group>]
               spiped --config <file> [--check] [-DF] [-p <pidfile>] [--syslog] [-u ...]
            [--log-level <level>] [--metrics <address>] [--drain-timeout <seconds>]
               spiped {-h | --help | -v | --version}

        """

    /// The options `--help` describes, by group, one line each.
    public static let optionGroups: [(title: String, options: [OptionHelp])] = [
        ("One pipe on the command line (with --config each pipe sets these in the file)", [
            OptionHelp(synopsis: "-e", description: "encrypt: plaintext in on the source, encrypted out (-e or -d required)"),
            OptionHelp(synopsis: "-d", description: "decrypt: encrypted in on the source, plaintext out to the target"),
            OptionHelp(synopsis: "-s <address>", description: "listen here: /unix/path, host:port, [v4]:port or [v6]:port (required)"),
            OptionHelp(synopsis: "-t <address>", description: "address to connect to, same forms (required)"),
            OptionHelp(synopsis: "-k <key file>", description: "shared key file, - for standard input (required)"),
            OptionHelp(synopsis: "-f", description: "fast handshake, no Diffie-Hellman: no forward secrecy (default: off)"),
            OptionHelp(synopsis: "-g", description: "require forward secrecy: refuse peers that use -f (default: off)"),
            OptionHelp(synopsis: "-n <count>", description: "maximum simultaneous connections, 0 = no limit (default: 100)"),
            OptionHelp(synopsis: "-o <seconds>", description: "time to connect to the target and to handshake (default: 5)"),
            OptionHelp(synopsis: "-r <seconds>", description: "re-resolve the target's host name this often (default: 60)"),
            OptionHelp(synopsis: "-R", description: "never re-resolve the target (default: re-resolve every -r seconds)"),
            OptionHelp(synopsis: "-j", description: "disable TCP keep-alives (default: keep-alives on)"),
            OptionHelp(synopsis: "-b <address>", description: "local address of outgoing connections (default: any)"),
            OptionHelp(synopsis: "--pool <count>", description: "-e only: keep this many connections to the -d handshaken (default: 0)"),
            OptionHelp(synopsis: "--pool-max-age <seconds>", description: "replace a pooled connection idle this long (default: 8)"),
            OptionHelp(synopsis: "--socket-mode <octal>", description: "permissions of a Unix-socket source, e.g. 660 (default: umask)"),
            OptionHelp(synopsis: "--socket-group <group>", description: "group of a Unix-socket source (default: unchanged)"),
        ]),
        ("The process", [
            OptionHelp(synopsis: "--config <file>", description: "run every pipe of <file>, see spiped.conf(5) (default: no file)"),
            OptionHelp(synopsis: "--check", description: "with --config: check file, keys, addresses; exit 0 or 1 (default: off)"),
            OptionHelp(synopsis: "-D", description: "daemonize before resolving names, retry failed lookups (default: off)"),
            OptionHelp(synopsis: "-F", description: "stay in the foreground: no fork, no pid file (default: daemonize)"),
            OptionHelp(synopsis: "-p <pid file>", description: "pid file of the daemon (default: <source>.pid, or pid-file =)"),
            OptionHelp(synopsis: "-u <user>[:<group>]", description: "drop privileges after binding; also :<group> (default: keep)"),
            OptionHelp(synopsis: "--syslog", description: "log to syslog once running (default: standard error)"),
            OptionHelp(synopsis: "--log-level <level>", description: "error, warning, info (a line per connection), debug (default: warning)"),
            OptionHelp(synopsis: "--metrics <address>", description: "serve Prometheus metrics at GET /metrics here (default: off)"),
            OptionHelp(synopsis: "--drain-timeout <seconds>", description: "on SIGTERM, drain for at most this long (default: 0 = no limit)"),
            OptionHelp(synopsis: "-h, --help", description: "print this help on standard output and exit"),
            OptionHelp(synopsis: "-v", description: "print the version on standard error and exit, as the reference does"),
            OptionHelp(synopsis: "--version", description: "print the version on standard output and exit"),
        ]),
    ]

    /// What `--help` prints.
    public static let help = OptionHelp.render(
        header: """
            spiped \(spipedVersion): a secure pipe daemon; wire-compatible with Tarsnap's spiped
            usage: spiped {-e | -d} -s <source> -t <target> -k <key file> [options]
                   spiped --config <file> [--check] [options]
                   spiped {-h | --help | -v | --version}
            SIGTERM/SIGINT: drain, then exit (a second one exits at once); SIGHUP: reload --config or -k.
            See spiped(1) and spiped.conf(5).

            """,
        groups: optionGroups)

    /// The line `-v` and `--version` print.
    public static let version = "spiped \(spipedVersion)\n"
}

/// Texts printed by `spipe`.
public enum SpipeUsage {
    /// The synopsis printed after a usage error.
    public static let text = """
        usage: spipe -t <target socket> -k <key file> [-b <bind address>] [-f | -g] [-j]
            [-o <connection timeout>]
               spipe {-h | --help | -v | --version}

        """

    /// The options `--help` describes, one line each.
    public static let options: [OptionHelp] = [
        OptionHelp(synopsis: "-t <address>", description: "the spiped -d: /unix/path, host:port, [v4]:port or [v6]:port (required)"),
        OptionHelp(synopsis: "-k <key file>", description: "shared key file, - for standard input (required)"),
        OptionHelp(synopsis: "-b <address>", description: "local address of the connection (default: any)"),
        OptionHelp(synopsis: "-f", description: "fast handshake, no Diffie-Hellman: no forward secrecy (default: off)"),
        OptionHelp(synopsis: "-g", description: "require forward secrecy: refuse a server that uses -f (default: off)"),
        OptionHelp(synopsis: "-j", description: "disable TCP keep-alives (default: keep-alives on)"),
        OptionHelp(synopsis: "-o <seconds>", description: "time allowed to connect and to handshake (default: 5)"),
        OptionHelp(synopsis: "-h, --help", description: "print this help on standard output and exit"),
        OptionHelp(synopsis: "-v", description: "print the version on standard error and exit, as the reference does"),
        OptionHelp(synopsis: "--version", description: "print the version on standard output and exit"),
    ]

    /// What `--help` prints.
    public static let help = OptionHelp.render(
        header: """
            spipe \(spipedVersion): one encrypted connection to a spiped -d
            usage: spipe -t <target> -k <key file> [options]
                   spipe {-h | --help | -v | --version}
            Standard input is sent; the reply is written to standard output. See spipe(1).

            """,
        groups: [("Options", options)])

    /// The line `-v` and `--version` print.
    public static let version = "spipe \(spipedVersion)\n"
}
