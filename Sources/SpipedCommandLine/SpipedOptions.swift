// The command line of `spiped`, parsed into a typed configuration. Accepts and refuses what
// spiped 1.6.2 (Debian) does — checked against /usr/bin/spiped, see the table in
// Tests/SpipedCommandLineTests — plus `-b` from 1.6.3. Pure: no I/O.
import SpipedSystem

/// What `spiped` was asked to do.
public enum SpipedInvocation: Equatable, Sendable {
    /// Run the daemon with these options.
    case run(SpipedOptions)
    /// `-v`: print the version and exit with status 0.
    case showVersion
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

    /// Parses `spiped`'s arguments (without the program name).
    ///
    /// Options are read in order, as getopt does: an unknown option, a missing argument, an
    /// option given twice or a malformed number stops parsing there; `-v` anywhere before such
    /// an error means "print the version" (what follows it is not looked at). Then extra words, a missing `-e`/`-d`/`-s`/`-t`/`-k`,
    /// `-f` with `-g`, a timeout that is not positive, and `-r` (other than 60) with `-R` are
    /// refused. Finally the addresses and `-u` are checked.
    public static func parse(_ arguments: [String]) throws(CommandLineError) -> SpipedInvocation {
        var draft = Draft()
        let operands: [String]
        do {
            operands = try scanner.scan(arguments) { (name: String, argument: String?) throws(CommandLineError) -> Bool in
                try draft.apply(name, argument)
                return !draft.showVersion
            }
        } catch {
            switch error {
            case .scan(.illegalOption(let option)): throw .illegalOption(option)
            case .scan(.missingArgument(let option)): throw .missingArgument(option)
            case .handler(let failure): throw failure
            }
        }
        if draft.showVersion { return .showVersion }
        if let extra = operands.first { throw .usage("unexpected argument: \(extra)") }
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
    ])

    /// The reference's rule for durations: absent or zero (including -0) means the default.
    static func defaulted(_ value: Double?, to standard: Double) -> Double {
        guard let value, value != 0 else { return standard }
        return value
    }

    /// Options as they are collected, before defaults and cross-checks.
    private struct Draft {
        var seen: Set<String> = []
        var mode: Mode?
        var showVersion = false
        var flags: Set<String> = []
        var texts: [String: String] = [:]
        var maxConnections: UInt64?
        var timeout: Double?
        var resolveInterval: Double?

        /// Records one option; refuses repeats and malformed numbers.
        mutating func apply(_ name: String, _ argument: String?) throws(CommandLineError) {
            if name == "-v" { showVersion = true; return }
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
                switch NumberArguments.unsignedCount(argument) {
                case .success(let value): maxConnections = value
                case .failure(.invalid): throw .invalidNumber(option: name, value: argument)
                case .failure(.outOfRange): throw .numberOutOfRange(option: name, value: argument)
                }
            case "-o", "-r":
                switch NumberArguments.duration(argument) {
                case .success(let value): if name == "-o" { timeout = value } else { resolveInterval = value }
                case .failure(.invalid): throw .invalidNumber(option: name, value: argument)
                case .failure(.outOfRange): throw .numberOutOfRange(option: name, value: argument)
                }
            default:
                texts[name] = argument
            }
        }

        /// Applies defaults and the cross-option rules, and parses addresses.
        func finish() throws(CommandLineError) -> SpipedOptions {
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
            var privileges: PrivilegeDropSpec?
            if let text = texts["-u"] {
                do { privileges = try PrivilegeDropSpec.parse(text) } catch { throw .invalidPrivileges(value: text, error) }
            }

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
                bindAddress: bindAddress
            )
        }
    }
}
