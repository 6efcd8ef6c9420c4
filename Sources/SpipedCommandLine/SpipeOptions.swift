// The command line of `spipe`, parsed into a typed configuration. Accepts and refuses what
// spipe 1.6.2 (Debian) does, plus `-b` from 1.6.3 and this implementation's `-h`, `--help` and
// `--version`. Pure: no I/O.
import SpipedSystem

/// What `spipe` was asked to do.
public enum SpipeInvocation: Equatable, Sendable {
    /// Connect once with these options.
    case run(SpipeOptions)
    /// `-h`/`--help`: print `SpipeUsage.help` on standard output and exit with status 0.
    case showHelp
    /// `-v` (on standard error, as the reference does) or `--version` (on standard output):
    /// print the version and exit with status 0.
    case showVersion(onStandardOutput: Bool)
}

/// Everything the `spipe` command line specifies, with the reference's defaults filled in.
public struct SpipeOptions: Equatable, Sendable {
    /// `-t`: the spiped server to connect to.
    public var target: AddressSpec
    /// `-t` exactly as typed.
    public var targetText: String
    /// `-k`: the key file (`-` for standard input).
    public var keyFilePath: String
    /// `-b`: local address to bind the outgoing connection to.
    public var bindAddress: AddressSpec?
    /// `-f`: fast handshake without Diffie-Hellman.
    public var fast: Bool
    /// `-g`: refuse a server that uses `-f`.
    public var requireForwardSecrecy: Bool
    /// Not `-j`: enable SO_KEEPALIVE.
    public var keepAlive: Bool
    /// `-o`: connect and handshake timeout in seconds (default 5; may be +infinity).
    public var timeoutSeconds: Double

    /// Parses `spipe`'s arguments (without the program name), with the same rules as `spiped`
    /// (`-v`, `--version`, `-h` or `--help` before any error is the answer, whatever follows).
    public static func parse(_ arguments: [String]) throws(CommandLineError) -> SpipeInvocation {
        var seen: Set<String> = []
        var early: SpipeInvocation?
        var texts: [String: String] = [:]
        var timeout: Double?
        let operands: [String]
        do {
            operands = try scanner.scan(arguments) { (name: String, argument: String?) throws(CommandLineError) -> Bool in
                switch name {
                case "-v": early = .showVersion(onStandardOutput: false); return false
                case "--version": early = .showVersion(onStandardOutput: true); return false
                case "-h", "--help": early = .showHelp; return false
                default: break
                }
                guard !seen.contains(name) else { throw .usage("option \(name) given more than once") }
                seen.insert(name)
                if name == "-o", let argument {
                    switch NumberArguments.duration(argument) {
                    case .success(let value): timeout = value
                    case .failure(.invalid): throw .invalidNumber(option: name, value: argument)
                    case .failure(.outOfRange): throw .numberOutOfRange(option: name, value: argument)
                    }
                } else if let argument {
                    texts[name] = argument
                }
                return true
            }
        } catch {
            switch error {
            case .scan(.illegalOption(let option)): throw .illegalOption(option)
            case .scan(.missingArgument(let option)): throw .missingArgument(option)
            case .handler(let failure): throw failure
            }
        }
        if let early { return early }
        if let extra = operands.first { throw .usage("unexpected argument: \(extra)") }
        if seen.contains("-f") && seen.contains("-g") { throw .usage("-f and -g cannot be used together") }
        guard let keyFilePath = texts["-k"] else { throw .usage("-k <key file> is required") }
        let effectiveTimeout = SpipedOptions.defaulted(timeout, to: 5)
        guard effectiveTimeout > 0 else { throw .usage("the connection timeout (-o) must be positive") }
        guard let targetText = texts["-t"] else { throw .usage("-t <target socket> is required") }

        var bindAddress: AddressSpec?
        if let text = texts["-b"] {
            do { bindAddress = try AddressSpec.parseBindAddress(text) } catch { throw .invalidAddress(option: "-b", value: text, error) }
        }
        let target: AddressSpec
        do { target = try AddressSpec.parse(targetText) } catch { throw .invalidAddress(option: "-t", value: targetText, error) }
        return .run(SpipeOptions(
            target: target,
            targetText: targetText,
            keyFilePath: keyFilePath,
            bindAddress: bindAddress,
            fast: seen.contains("-f"),
            requireForwardSecrecy: seen.contains("-g"),
            keepAlive: !seen.contains("-j"),
            timeoutSeconds: effectiveTimeout
        ))
    }

    /// The options `spipe` has.
    static let scanner = OptionScanner(definitions: [
        OptionDefinition(name: "-b", takesArgument: true),
        OptionDefinition(name: "-f", takesArgument: false),
        OptionDefinition(name: "-g", takesArgument: false),
        OptionDefinition(name: "-j", takesArgument: false),
        OptionDefinition(name: "-k", takesArgument: true),
        OptionDefinition(name: "-o", takesArgument: true),
        OptionDefinition(name: "-t", takesArgument: true),
        OptionDefinition(name: "-v", takesArgument: false),
        OptionDefinition(name: "-h", takesArgument: false),
        OptionDefinition(name: "--help", takesArgument: false),
        OptionDefinition(name: "--version", takesArgument: false),
    ])
}
