// Every way a command line can be refused, with the text spiped prints for it.
import SpipedSystem

/// Why a command line was refused. Each case knows its message and whether the usage text
/// follows it; the program prints `rendered(program:usage:)` to stderr and exits with status 1.
public enum CommandLineError: Error, Equatable, Sendable {
    /// The options do not form a valid command (missing or conflicting options, an option given
    /// twice, extra words); the associated text says which rule was broken.
    case usage(String)
    /// An option that the program does not have (`-x`, `--bogus`).
    case illegalOption(String)
    /// An option that needs an argument was last on the line.
    case missingArgument(String)
    /// A numeric argument that is not a number.
    case invalidNumber(option: String, value: String)
    /// A numeric argument outside its range.
    case numberOutOfRange(option: String, value: String)
    /// An address argument (`-s`, `-t`, `-b`) that cannot be parsed.
    case invalidAddress(option: String, value: String, AddressSpecError)
    /// A `-u` argument that names neither a user nor a group.
    case invalidPrivileges(value: String, PrivilegeError)
    /// An argument of one of the long options (`--log-level`, `--socket-mode`, ...) that is not
    /// one of its accepted values; `reason` says what is accepted.
    case invalidValue(option: String, value: String, reason: String)

    /// True when the usage text should follow the message.
    public var showsUsage: Bool {
        switch self {
        case .usage, .illegalOption, .missingArgument: return true
        case .invalidNumber, .numberOutOfRange, .invalidAddress, .invalidPrivileges, .invalidValue: return false
        }
    }

    /// The one-line message (without the program name), in the reference's wording where it has one.
    public var message: String {
        switch self {
        case .usage(let reason): return reason
        case .illegalOption(let option): return "illegal option -- \(option)"
        case .missingArgument(let option): return "Missing argument to \(option)"
        case .invalidNumber(let option, let value): return "Error parsing argument: \(option) \(value): Invalid argument"
        case .numberOutOfRange(let option, let value): return "Error parsing argument: \(option) \(value): Numerical result out of range"
        case .invalidAddress(let option, let value, let problem):
            return "Error resolving socket address: \(value) (\(option)): \(problem.message)"
        case .invalidPrivileges(let value, let problem): return "Invalid -u \"\(value)\": \(problem.message)"
        case .invalidValue(let option, let value, let reason): return "Invalid \(option) \"\(value)\": \(reason)"
        }
    }

    /// The full text for stderr: `program: message`, then the usage text when it applies.
    public func rendered(program: String, usage: String) -> String {
        var text = "\(program): \(message)\n"
        if showsUsage { text += usage }
        return text
    }
}
