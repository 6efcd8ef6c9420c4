// The command line of `spiped`, parsed into a typed configuration. Without this
// implementation's long options it accepts and refuses what spiped 1.6.2 (Debian) does —
// checked against /usr/bin/spiped, see the table in Tests/SpipedCommandLineTests — plus `-b`
// from 1.6.3. The long options of /work/OPTIONS.md (`--config`, `--help`, `--pool`, ...) are
// additions the reference refuses. Pure: no I/O.
import SpipedSystem

/// What `spiped` was asked to do.
public enum SpipedInvocation: Equatable, Sendable {
    /// Run one pipe described on the command line (`-e`/`-d`, `-s`, `-t`, `-k`, ...).
    case run(SpipedOptions)
    /// `--config FILE`: run (or with `--check`, only validate) every pipe of a configuration file.
    case runConfiguration(SpipedConfigurationOptions)
    /// `-h`/`--help`: print `SpipedUsage.help` on standard output and exit with status 0.
    case showHelp
    /// `-v` (on standard error, as the reference does) or `--version` (on standard output):
    /// print the version and exit with status 0.
    case showVersion(onStandardOutput: Bool)
}

/// What `spiped --config FILE` was given on the command line: the file, and the process-wide
/// options that may accompany it. A nil field was not given: the file's global setting (or the
/// default) applies. The per-pipe options (`-e`, `-s`, `-n`, `--pool`, ...) are refused with
/// `--config`; each pipe sets them in the file.
public struct SpipedConfigurationOptions: Equatable, Sendable {
    /// `--config`: the configuration file, spiped.conf(5).
    public var configPath: String
    /// `--check`: validate the file (syntax, keys readable, addresses valid), exit 0 or 1.
    public var checkOnly: Bool
    /// `-D`: daemonize before resolving addresses and retry failed lookups.
    public var waitForDNS: Bool
    /// `-F`: stay in the foreground (no fork, no pid file).
    public var foreground: Bool
    /// `-p`: pid file; nil means the file's `pid-file =`.
    public var pidFilePath: String?
    /// `--syslog`: log to syslog once running; false means the file's `syslog =` decides.
    public var useSyslog: Bool
    /// `-u`: user and/or group to switch to after binding; nil means the file's `user =`.
    public var privileges: PrivilegeDropSpec?
    /// `--log-level`; nil means the file's `log-level =` (default `warning`).
    public var logLevel: SpipedLogLevel?
    /// `--metrics`: where to serve Prometheus metrics; nil means the file's `metrics =` (default none).
    public var metricsAddress: AddressSpec?
    /// `--drain-timeout` in seconds, 0 = no limit; nil means the file's `drain-timeout =` (default 0).
    public var drainTimeoutSeconds: Double?
}

/// Everything the `spiped` command line specifies, with the reference's defaults filled in.
public struct SpipedOptions: Equatable, Sendable {
    /// `-e` (encrypt) or `-d` (decrypt).
    public enum Mode: Equatable, Sendable {
        /// `-e`: plaintext in on the source socket, encrypted connections out to the target.
        case encrypt
        /// `-d`: encrypted in on the source socket, plaintext connections out to the target.
        case decrypt
    }

    /// `-e` or `-d`.
    public var mode: Mode
    /// `-s`: the address to listen on.
    public var source: AddressSpec
    /// `-s` exactly as typed (used for the default pid file name and messages).
    public var sourceText: String
    /// `-t`: the address to connect to.
    public var target: AddressSpec
    /// `-t` exactly as typed.
    public var targetText: String
    /// `-k`: the key file (`-` for standard input).
    public var keyFilePath: String
    /// `-D`: daemonize before resolving addresses and retry failed lookups.
    public var waitForDNS: Bool
    /// `-F`: stay in the foreground (no fork, no pid file).
    public var foreground: Bool
    /// Not `-j`: enable SO_KEEPALIVE on connections.
    public var keepAlive: Bool
    /// `-f`: fast handshake without Diffie-Hellman (no forward secrecy).
    public var fast: Bool
    /// `-g`: refuse peers that use `-f`.
    public var requireForwardSecrecy: Bool
    /// `-n`: maximum simultaneous connections; 0 means no limit (default 100). Values larger than
    /// `Int.max` (including the wrapped-around negative numbers the reference accepts) mean no limit.
    public var maxConnections: Int
    /// `-o`: connect and handshake timeout in seconds (default 5; may be +infinity).
    public var timeoutSeconds: Double
    /// `-r`: seconds between re-resolutions of the target (default 60); nil with `-R`, or when
    /// `-r` is infinite or NaN (never re-resolve).
    public var resolveIntervalSeconds: Double?
    /// `-p`: pid file, default `<-s text>.pid` (relative paths are relative to the working directory).
    public var pidFilePath: String
    /// `--syslog`: once running (after daemonizing, or after binding under `-F`), send warnings to syslog instead of stderr.
    public var useSyslog: Bool
    /// `-u`: user and/or group to switch to after binding.
    public var privileges: PrivilegeDropSpec?
    /// `-b`: local address to bind outgoing connections to.
    public var bindAddress: AddressSpec?
    /// `--log-level` (default `warning`).
    public var logLevel: SpipedLogLevel
    /// `--metrics`: where to serve Prometheus metrics (`GET /metrics`); nil = no metrics.
    public var metricsAddress: AddressSpec?
    /// `--pool` (`-e` only): connections to the target kept handshaken ahead of time (default 0).
    public var poolSize: Int
    /// `--pool-max-age`: seconds after which an idle pooled connection is replaced (default 8;
    /// may be +infinity: never).
    public var poolMaxAgeSeconds: Double
    /// `--drain-timeout`: seconds to wait for open connections after SIGTERM; 0 = no limit
    /// (the default; an infinite value is stored as 0).
    public var drainTimeoutSeconds: Double
    /// `--socket-mode`: permission bits of a Unix-socket source (at most 0777); nil = as the
    /// umask gives, like the reference.
    public var socketMode: UInt32?
    /// `--socket-group`: group (name or number) of a Unix-socket source; nil = unchanged.
    public var socketGroup: String?

    /// Default of `--pool-max-age`, in seconds.
    public static let defaultPoolMaxAgeSeconds = 8.0
    /// Largest `--pool` accepted.
    public static let maximumPoolSize = 1000

    /// Parses `spiped`'s arguments (without the program name).
    ///
    /// Options are read in order, as getopt does: an unknown option, a missing argument, an
    /// option given twice or a malformed number stops parsing there; `-v`, `--version`, `-h`
    /// or `--help` anywhere before such an error means "print the version" (or the help),
    /// and what follows it is not looked at. Then extra words are refused. With `--config`, the
    /// per-pipe options are refused (`SpipedConfigurationOptions`). Otherwise `--check`, a
    /// missing `-e`/`-d`/`-s`/`-t`/`-k`, `-f` with `-g`, a timeout that is not positive, and `-r`
    /// (other than 60) with `-R` are refused; then the addresses and `-u` are checked, and last
    /// the rules of the new options (`--pool` needs `-e`, `--socket-mode` a Unix source, ...).
    public static func parse(_ arguments: [String]) throws(CommandLineError) -> SpipedInvocation {
        var draft = Draft()
        let operands: [String]
        do {
            operands = try scanner.scan(arguments) { (name: String, argument: String?) throws(CommandLineError) -> Bool in
                try draft.apply(name, argument)
                return draft.early == nil
            }
        } catch {
            switch error {
            case .scan(.illegalOption(let option)): throw .illegalOption(option)
            case .scan(.missingArgument(let option)): throw .missingArgument(option)
            case .handler(let failure): throw failure
            }
        }
        if let early = draft.early { return early }
        if let extra = operands.first { throw .usage("unexpected argument: \(extra)") }
        if draft.texts["--config"] != nil { return .runConfiguration(try draft.finishConfiguration()) }
        return .run(try draft.finish())
    }

    /// The options `spiped` has.
    static let scanner = OptionScanner(definitions: [
        OptionDefinition(name: "-b", takesArgument: true),
        OptionDefinition(name: "-d", takesArgument: false),
        OptionDefinition(name: "-D", takesArgument: false),
        OptionDefinition(name: "-e", takesArgument: false),
        OptionDefinition(name: "-f", takesArgument: false),
        OptionDefinition(name: "-F", takesArgument: false),
        OptionDefinition(name: "-g", takesArgument: false),
        OptionDefinition(name: "-j", takesArgument: false),
        OptionDefinition(name: "-k", takesArgument: true),
        OptionDefinition(name: "-n", takesArgument: true),
        OptionDefinition(name: "-o", takesArgument: true),
        OptionDefinition(name: "-p", takesArgument: true),
        OptionDefinition(name: "-r", takesArgument: true),
        OptionDefinition(name: "-R", takesArgument: false),
        OptionDefinition(name: "-s", takesArgument: true),
        OptionDefinition(name: "--syslog", takesArgument: false),
        OptionDefinition(name: "-t", takesArgument: true),
        OptionDefinition(name: "-u", takesArgument: true),
        OptionDefinition(name: "-v", takesArgument: false),
        OptionDefinition(name: "-h", takesArgument: false),
        OptionDefinition(name: "--help", takesArgument: false),
        OptionDefinition(name: "--version", takesArgument: false),
        OptionDefinition(name: "--config", takesArgument: true),
        OptionDefinition(name: "--check", takesArgument: false),
        OptionDefinition(name: "--log-level", takesArgument: true),
        OptionDefinition(name: "--metrics", takesArgument: true),
        OptionDefinition(name: "--pool", takesArgument: true),
        OptionDefinition(name: "--pool-max-age", takesArgument: true),
        OptionDefinition(name: "--drain-timeout", takesArgument: true),
        OptionDefinition(name: "--socket-mode", takesArgument: true),
        OptionDefinition(name: "--socket-group", takesArgument: true),
    ])

    /// The options that describe one pipe, refused with `--config`, and the key of
    /// spiped.conf(5) that replaces each (in the order the refusal is checked).
    static let perPipeOptions: [(option: String, key: String)] = [
        ("-s", "source ="), ("-t", "target ="), ("-k", "key ="), ("-f", "fast = yes"),
        ("-g", "require-forward-secrecy = yes"), ("-n", "max-connections ="), ("-o", "timeout ="),
        ("-r", "resolve-interval ="), ("-R", "resolve = no"), ("-j", "keepalive = no"), ("-b", "bind-address ="),
        ("--pool", "pool ="), ("--pool-max-age", "pool-max-age ="), ("--socket-mode", "socket-mode ="),
        ("--socket-group", "socket-group ="),
    ]

    /// The reference's rule for durations: absent or zero (including -0) means the default.
    static func defaulted(_ value: Double?, to standard: Double) -> Double {
        guard let value, value != 0 else { return standard }
        return value
    }

    /// Options as they are collected, before defaults and cross-checks.
    private struct Draft {
        var seen: Set<String> = []
        var mode: Mode?
        /// Set by `-v`, `--version`, `-h` and `--help`: the answer, whatever else is on the line.
        var early: SpipedInvocation?
        var flags: Set<String> = []
        var texts: [String: String] = [:]
        var maxConnections: UInt64?
        var timeout: Double?
        var resolveInterval: Double?
        var logLevel: SpipedLogLevel?
        var poolSize: Int?
        var poolMaxAge: Double?
        var drainTimeout: Double?
        var socketMode: UInt32?

        /// Records one option; refuses repeats and malformed numbers or values.
        mutating func apply(_ name: String, _ argument: String?) throws(CommandLineError) {
            switch name {
            case "-v": early = .showVersion(onStandardOutput: false); return
            case "--version": early = .showVersion(onStandardOutput: true); return
            case "-h", "--help": early = .showHelp; return
            default: break
            }
            if name == "-e" || name == "-d" {
                guard mode == nil else { throw .usage("only one of -e and -d may be given, once") }
                mode = name == "-e" ? .encrypt : .decrypt
                return
            }
            guard !seen.contains(name) else { throw .usage("option \(name) given more than once") }
            seen.insert(name)
            guard let argument else { flags.insert(name); return }
            switch name {
            case "-n":
                maxConnections = try count(name, argument)
            case "-o", "-r":
                let value = try duration(name, argument)
                if name == "-o" { timeout = value } else { resolveInterval = value }
            case "--log-level":
                guard let level = SpipedLogLevel(name: argument) else {
                    throw .invalidValue(option: name, value: argument, reason: "use error, warning, info or debug")
                }
                logLevel = level
            case "--pool":
                let value = try count(name, argument)
                guard value <= UInt64(SpipedOptions.maximumPoolSize) else { throw .numberOutOfRange(option: name, value: argument) }
                poolSize = Int(value)
            case "--pool-max-age":
                let value = try duration(name, argument)
                guard !value.isNaN else { throw .invalidNumber(option: name, value: argument) }
                guard value > 0 else {
                    throw .invalidValue(option: name, value: argument, reason: "the age must be a positive number of seconds")
                }
                poolMaxAge = value
            case "--drain-timeout":
                let value = try duration(name, argument)
                guard !value.isNaN else { throw .invalidNumber(option: name, value: argument) }
                drainTimeout = value.isFinite ? value : 0
            case "--socket-mode":
                switch NumberArguments.permissionMode(argument) {
                case .success(let value): socketMode = value
                case .failure(.invalid):
                    throw .invalidValue(option: name, value: argument, reason: "give the mode as octal digits, such as 660")
                case .failure(.outOfRange):
                    throw .invalidValue(option: name, value: argument, reason: "only the permission bits (at most 777) apply to a socket")
                }
            case "--config", "--socket-group":
                guard !argument.isEmpty else { throw .invalidValue(option: name, value: argument, reason: "it must not be empty") }
                texts[name] = argument
            default:
                texts[name] = argument
            }
        }

        /// A count (`-n`, `--pool`) read as the reference reads `-n`.
        private func count(_ name: String, _ argument: String) throws(CommandLineError) -> UInt64 {
            switch NumberArguments.unsignedCount(argument) {
            case .success(let value): return value
            case .failure(.invalid): throw .invalidNumber(option: name, value: argument)
            case .failure(.outOfRange): throw .numberOutOfRange(option: name, value: argument)
            }
        }

        /// A duration (`-o`, `-r`, `--pool-max-age`, `--drain-timeout`) read as the reference reads `-o`.
        private func duration(_ name: String, _ argument: String) throws(CommandLineError) -> Double {
            switch NumberArguments.duration(argument) {
            case .success(let value): return value
            case .failure(.invalid): throw .invalidNumber(option: name, value: argument)
            case .failure(.outOfRange): throw .numberOutOfRange(option: name, value: argument)
            }
        }

        /// Parses `--metrics`: any `-s`-style TCP address (a Unix path cannot be scraped).
        private func metricsAddress() throws(CommandLineError) -> AddressSpec? {
            guard let text = texts["--metrics"] else { return nil }
            let address: AddressSpec
            do { address = try AddressSpec.parse(text) } catch { throw .invalidAddress(option: "--metrics", value: text, error) }
            if case .unix = address {
                throw .invalidValue(option: "--metrics", value: text, reason: "metrics are served over TCP: give host:port or [address]:port")
            }
            return address
        }

        /// Parses `-u`.
        private func privileges() throws(CommandLineError) -> PrivilegeDropSpec? {
            guard let text = texts["-u"] else { return nil }
            do { return try PrivilegeDropSpec.parse(text) } catch { throw .invalidPrivileges(value: text, error) }
        }

        /// The `--config` case: refuses the per-pipe options, keeps the process-wide ones.
        func finishConfiguration() throws(CommandLineError) -> SpipedConfigurationOptions {
            if let mode {
                throw .usage("\(mode == .encrypt ? "-e" : "-d") cannot be used with --config: set mode = in each pipe's section of the file")
            }
            for (option, key) in SpipedOptions.perPipeOptions where seen.contains(option) {
                throw .usage("\(option) cannot be used with --config: set \(key) in each pipe's section of the file")
            }
            return SpipedConfigurationOptions(
                configPath: texts["--config"] ?? "",
                checkOnly: flags.contains("--check"),
                waitForDNS: flags.contains("-D"),
                foreground: flags.contains("-F"),
                pidFilePath: texts["-p"],
                useSyslog: flags.contains("--syslog"),
                privileges: try privileges(),
                logLevel: logLevel,
                metricsAddress: try metricsAddress(),
                drainTimeoutSeconds: drainTimeout
            )
        }

        /// Applies defaults and the cross-option rules, and parses addresses.
        func finish() throws(CommandLineError) -> SpipedOptions {
            if flags.contains("--check") { throw .usage("--check needs --config <file> (it checks a configuration file)") }
            guard let mode else { throw .usage("one of -e and -d is required") }
            if flags.contains("-f") && flags.contains("-g") { throw .usage("-f and -g cannot be used together") }
            guard let keyFilePath = texts["-k"] else { throw .usage("-k <key file> is required") }
            // 0 means "default" for both durations, as in the reference.
            let timeout = SpipedOptions.defaulted(self.timeout, to: 5)
            guard timeout > 0 else { throw .usage("the connection timeout (-o) must be positive") }
            let resolveInterval = SpipedOptions.defaulted(self.resolveInterval, to: 60)
            let noResolve = flags.contains("-R")
            // The reference only notices -r together with -R when the value differs from 60.
            if noResolve && resolveInterval != 60 { throw .usage("-r and -R cannot be used together") }
            guard let sourceText = texts["-s"] else { throw .usage("-s <source socket> is required") }
            guard let targetText = texts["-t"] else { throw .usage("-t <target socket> is required") }

            let bindAddress: AddressSpec?
            if let text = texts["-b"] {
                do { bindAddress = try AddressSpec.parseBindAddress(text) } catch { throw .invalidAddress(option: "-b", value: text, error) }
            } else {
                bindAddress = nil
            }
            let source: AddressSpec
            do { source = try AddressSpec.parse(sourceText) } catch { throw .invalidAddress(option: "-s", value: sourceText, error) }
            let target: AddressSpec
            do { target = try AddressSpec.parse(targetText) } catch { throw .invalidAddress(option: "-t", value: targetText, error) }
            let privileges = try privileges()

            // The rules of this implementation's own options (the reference has none of them).
            if mode != .encrypt {
                if poolSize != nil { throw .usage("--pool needs -e (it keeps connections to the -d end handshaken ahead of time)") }
                if poolMaxAge != nil { throw .usage("--pool-max-age needs -e and --pool") }
            }
            if poolMaxAge != nil && poolSize == nil { throw .usage("--pool-max-age needs --pool") }
            let sourceIsUnix: Bool
            if case .unix = source { sourceIsUnix = true } else { sourceIsUnix = false }
            for option in ["--socket-mode", "--socket-group"] where seen.contains(option) && !sourceIsUnix {
                throw .usage("\(option) needs a Unix-socket source (-s /path/to/socket)")
            }
            let metricsAddress = try metricsAddress()

            let count = maxConnections ?? 100
            return SpipedOptions(
                mode: mode,
                source: source,
                sourceText: sourceText,
                target: target,
                targetText: targetText,
                keyFilePath: keyFilePath,
                waitForDNS: flags.contains("-D"),
                foreground: flags.contains("-F"),
                keepAlive: !flags.contains("-j"),
                fast: flags.contains("-f"),
                requireForwardSecrecy: flags.contains("-g"),
                maxConnections: count > UInt64(Int.max) ? 0 : Int(count),
                timeoutSeconds: timeout,
                resolveIntervalSeconds: noResolve || !resolveInterval.isFinite ? nil : resolveInterval,
                pidFilePath: texts["-p"] ?? sourceText + ".pid",
                useSyslog: flags.contains("--syslog"),
                privileges: privileges,
                bindAddress: bindAddress,
                logLevel: logLevel ?? .standard,
                metricsAddress: metricsAddress,
                poolSize: poolSize ?? 0,
                poolMaxAgeSeconds: poolMaxAge ?? SpipedOptions.defaultPoolMaxAgeSeconds,
                drainTimeoutSeconds: drainTimeout ?? 0,
                socketMode: socketMode,
                socketGroup: texts["--socket-group"]
            )
        }
    }
}
