// Everything that can be wrong with a configuration file, as one flat enum, and the
// diagnostics that pair a problem with its file and line (`FILE:LINE: message`, as compilers
// and nginx print them).
import Glibc
import SpipedProtocol
import SpipedSystem

/// One thing wrong with a configuration file (or, for `.keyFileWarning`, worth a warning).
public enum ConfigurationProblem: Error, Equatable, Sendable {
    // MARK: Lines
    /// The line is not valid UTF-8.
    case invalidUTF8
    /// The line holds a control character (other than tab) or a NUL byte.
    case controlCharacter
    /// The line is neither blank, a comment, `[name]` nor `option = value`.
    case unrecognizedLine(String)
    /// A section name with characters other than letters, digits, `-`, `_`, `.` (or empty, or too long).
    case invalidPipeName(String)
    /// `option =` with nothing after the `=`.
    case emptyValue(option: String)
    /// An option name that does not exist; `suggestion` is the nearest known name, if close.
    case unknownOption(String, suggestion: String?)
    /// A pipe option before the first section.
    case pipeOptionOutsidePipe(String)
    /// A global option inside a section.
    case globalOptionInsidePipe(String, pipe: String)
    /// A global option (other than `include`) in an included file.
    case globalOptionInIncludedFile(String)
    /// A single-valued option given again in the same section (or global part).
    case repeatedOption(String, firstLine: Int)

    // MARK: Values
    /// A number option whose value is not a number.
    case invalidNumber(option: String, value: String)
    /// A number option whose value is outside `allowed` (e.g. `0 to 1000`).
    case numberOutOfRange(option: String, value: String, allowed: String)
    /// A duration that must be positive and is not (0, NaN, or negative after the defaults).
    case notPositive(option: String, value: String)
    /// Not one of yes/no, true/false, on/off, 1/0.
    case invalidBoolean(option: String, value: String)
    /// Not one of the words the option takes.
    case invalidChoice(option: String, value: String, choices: [String])
    /// An address that AddressSpec refuses.
    case invalidAddress(option: String, value: String, AddressSpecError)
    /// A `user` value that PrivilegeDropSpec refuses.
    case invalidPrivileges(value: String, PrivilegeError)
    /// A `socket-mode` that is not an octal number up to 777.
    case invalidSocketMode(String)
    /// A `route` value without both a key file and an address.
    case invalidRoute(String)
    /// `key = -` (or a route to `-`): standard input cannot be re-read on reload.
    case standardInputKey(option: String)

    // MARK: Pipes
    /// A required option is missing from the pipe; `hint` says what to add.
    case missingOption(pipe: String, option: String, hint: String)
    /// A second section with the same name.
    case duplicatePipeName(String, first: SourceLocation)
    /// A second pipe listening on the same address.
    case duplicateSource(pipe: String, address: String, otherPipe: String, other: SourceLocation)
    /// `route` in an encrypt pipe.
    case routeOnEncryptPipe(pipe: String)
    /// A second `key` in an encrypt pipe.
    case severalKeysOnEncryptPipe(pipe: String, firstLine: Int)
    /// `route` together with `target` or `key` in one pipe.
    case routeMixedWithTarget(pipe: String, option: String, line: Int)
    /// `pool` or `pool-max-age` in a decrypt pipe.
    case encryptOnlyOption(String, pipe: String)
    /// `socket-mode` or `socket-group` on a pipe whose source is not a Unix socket.
    case unixSourceOnlyOption(String, source: String)
    /// `fast = yes` with `require-forward-secrecy = yes`.
    case fastWithForwardSecrecy(pipe: String)
    /// `resolve = no` together with `resolve-interval`.
    case resolveDisabledWithInterval(pipe: String, line: Int)
    /// The same key file twice in one pipe (`key` or `route` lines).
    case duplicateKey(path: String, firstLine: Int)

    // MARK: Files and includes
    /// A file (the main one, or an included plain file) could not be read.
    case cannotRead(path: String, ConfigurationReadError)
    /// The directory of a wildcard include could not be listed.
    case cannotListDirectory(path: String, ConfigurationReadError)
    /// An include pattern with `*` before its last path component.
    case wildcardOutsideLastComponent(String)
    /// An include that would read a file already being read (the chain, outermost first).
    case includeCycle([String])
    /// Includes nested deeper than `limit`.
    case includeTooDeep(limit: Int)
    /// More files than the limit.
    case tooManyFiles(limit: Int)
    /// More bytes in all files together than the limit.
    case tooManyBytes(limit: Int)
    /// More pipes than the limit.
    case tooManyPipes(limit: Int)
    /// No section at all.
    case noPipes
    /// The diagnostic limit was reached; the rest of the input was not examined.
    case tooManyErrors(limit: Int)

    // MARK: Check (`--check`)
    /// A key file that cannot be loaded.
    case keyFileUnusable(path: String, SpipedProtocolError)
    /// A key file that loads but deserves a warning.
    case keyFileWarning(path: String, KeyFileWarning)
    /// A user name (in `user`) that is neither in the password database nor a number.
    case unknownUser(String)
    /// A group name (in `user` or `socket-group`) that is neither in the group database nor a number.
    case unknownGroup(String)

    /// True for problems that make the configuration unusable (all but key-file warnings).
    public var isError: Bool {
        if case .keyFileWarning = self { return false }
        return true
    }

    /// One line saying what is wrong (without the location).
    public var message: String {
        switch self {
        case .invalidUTF8: return "line is not valid UTF-8"
        case .controlCharacter: return "line contains a control character"
        case .unrecognizedLine(let text):
            return "expected 'option = value', '[pipe-name]' or a comment, found \(quoted(text))"
        case .invalidPipeName(let name):
            if name.isEmpty { return "empty pipe name '[]'" }
            if name.utf8.count > PipeDefinition.maximumNameLength {
                return "pipe name \(quoted(name)) is longer than \(PipeDefinition.maximumNameLength) bytes"
            }
            return "invalid pipe name \(quoted(name)): use letters, digits, '-', '_' and '.'"
        case .emptyValue(let option): return "option '\(option)' needs a value"
        case .unknownOption(let name, let suggestion):
            if let suggestion { return "unknown option \(quoted(name)) (did you mean '\(suggestion)'?)" }
            return "unknown option \(quoted(name))"
        case .pipeOptionOutsidePipe(let option):
            return "'\(option)' is a pipe option; it must be inside a [pipe-name] section"
        case .globalOptionInsidePipe(let option, let pipe):
            return "'\(option)' is a global option; it must come before the first section, not in [\(pipe)]"
        case .globalOptionInIncludedFile(let option):
            return "'\(option)' is a global option; it may only be set in the main configuration file"
        case .repeatedOption(let option, let firstLine):
            return "option '\(option)' given more than once (first at line \(firstLine))"
        case .invalidNumber(let option, let value): return "invalid number for '\(option)': \(quoted(value))"
        case .numberOutOfRange(let option, let value, let allowed):
            return "value of '\(option)' out of range (\(allowed)): \(quoted(value))"
        case .notPositive(let option, let value):
            return "'\(option)' must be a positive number of seconds: \(quoted(value))"
        case .invalidBoolean(let option, let value):
            return "invalid value for '\(option)': \(quoted(value)) (use yes or no)"
        case .invalidChoice(let option, let value, let choices):
            return "invalid value for '\(option)': \(quoted(value)) (use \(choices.joined(separator: ", ")))"
        case .invalidAddress(let option, let value, let problem):
            return "invalid address for '\(option)': \(quoted(value)): \(problem.message)"
        case .invalidPrivileges(let value, let problem): return "invalid 'user' \(quoted(value)): \(problem.message)"
        case .invalidSocketMode(let value):
            return "invalid 'socket-mode' \(quoted(value)): use an octal mode from 0 to 777, such as 0660"
        case .invalidRoute(let value):
            return "invalid 'route' \(quoted(value)): use 'route = KEYFILE ADDRESS'"
        case .standardInputKey(let option):
            return "'\(option)' cannot read the key from standard input ('-') in a configuration file"
        case .missingOption(let pipe, let option, let hint):
            return "pipe '\(pipe)' has no '\(option)' (\(hint))"
        case .duplicatePipeName(let name, let first):
            return "duplicate pipe name '\(name)' (first defined at \(first))"
        case .duplicateSource(let pipe, let address, let otherPipe, let other):
            return "pipe '\(pipe)' listens on \(address), as pipe '\(otherPipe)' does (at \(other))"
        case .routeOnEncryptPipe(let pipe):
            return "'route' is only allowed in a decrypt pipe, and [\(pipe)] has 'mode = encrypt'"
        case .severalKeysOnEncryptPipe(let pipe, let firstLine):
            return "an encrypt pipe takes exactly one 'key'; [\(pipe)] has another at line \(firstLine)"
        case .routeMixedWithTarget(let pipe, let option, let line):
            return "'route' cannot be combined with '\(option)' (line \(line)) in [\(pipe)]: a routed pipe takes its keys and targets from its routes"
        case .encryptOnlyOption(let option, let pipe):
            return "'\(option)' is only allowed in an encrypt pipe, and [\(pipe)] has 'mode = decrypt'"
        case .unixSourceOnlyOption(let option, let source):
            return "'\(option)' only applies to a Unix-socket source, not \(source)"
        case .fastWithForwardSecrecy(let pipe):
            return "'fast' and 'require-forward-secrecy' cannot both be yes in [\(pipe)]"
        case .resolveDisabledWithInterval(let pipe, let line):
            return "'resolve = no' cannot be combined with 'resolve-interval' (line \(line)) in [\(pipe)]"
        case .duplicateKey(let path, let firstLine):
            return "key file \(quoted(path)) listed more than once (first at line \(firstLine))"
        case .cannotRead(let path, let problem): return "cannot read \(quoted(path)): \(problem.message)"
        case .cannotListDirectory(let path, let problem): return "cannot list directory \(quoted(path)): \(problem.message)"
        case .wildcardOutsideLastComponent(let pattern):
            return "include pattern \(quoted(pattern)) may only have '*' in its last path component"
        case .includeCycle(let chain):
            return "include cycle: \(chain.joined(separator: " -> "))"
        case .includeTooDeep(let limit): return "includes nested more than \(limit) deep"
        case .tooManyFiles(let limit): return "more than \(limit) configuration files; stopping"
        case .tooManyBytes(let limit): return "configuration files larger than \(limit) bytes in total; stopping"
        case .tooManyPipes(let limit): return "more than \(limit) pipes; stopping"
        case .noPipes: return "no pipes defined (add a [pipe-name] section)"
        case .tooManyErrors(let limit): return "more than \(limit) errors; stopping"
        case .keyFileUnusable(let path, let problem):
            switch problem {
            case .keyFileNotFound: return "cannot open key file \(quoted(path)): \(errnoDescription(ENOENT))"
            case .keyFileUnreadable(_, let code): return "cannot read key file \(quoted(path)): \(errnoDescription(code))"
            default: return "cannot load key file \(quoted(path)): \(problem)"
            }
        case .keyFileWarning(let path, let warning):
            switch warning {
            case .readableByOthers: return warning.message(path: path)
            case .shortKeyFile: return "key file \(quoted(path)): \(warning.message)"
            }
        case .unknownUser(let name): return "no such user: \(quoted(name))"
        case .unknownGroup(let name): return "no such group: \(quoted(name))"
        }
    }
}

/// One problem at one place.
public struct ConfigurationDiagnostic: Equatable, Sendable, CustomStringConvertible {
    /// Where.
    public var location: SourceLocation
    /// What.
    public var problem: ConfigurationProblem

    /// Creates a diagnostic.
    public init(_ problem: ConfigurationProblem, at location: SourceLocation) {
        self.location = location
        self.problem = problem
    }

    /// True unless this is only a warning.
    public var isError: Bool { problem.isError }

    /// `FILE:LINE: message`, with `warning: ` before the message of a warning.
    public var description: String {
        "\(location): \(problem.isError ? "" : "warning: ")\(problem.message)"
    }
}

/// Why a configuration could not be used: every diagnostic, in file and line order.
public struct ConfigurationErrors: Error, Equatable, Sendable {
    /// The diagnostics (at least one is an error).
    public var diagnostics: [ConfigurationDiagnostic]

    /// Wraps diagnostics.
    public init(_ diagnostics: [ConfigurationDiagnostic]) { self.diagnostics = diagnostics }

    /// One `FILE:LINE: message` line per diagnostic, each ending in a newline.
    public var rendered: String { diagnostics.map { "\($0)\n" }.joined() }
}

/// Longest piece of user text repeated in a message, in characters.
let quotedTextLimit = 80

/// `'text'`, shortened with `...` when long (messages stay one readable line).
func quoted(_ text: String) -> String {
    if text.count <= quotedTextLimit { return "'\(text)'" }
    return "'\(text.prefix(quotedTextLimit))...'"
}

/// Sorts diagnostics by file (in the order the files were read; unknown files last, by name),
/// then line, keeping the order of equal positions.
func sortedDiagnostics(_ diagnostics: [ConfigurationDiagnostic], fileOrder: [String]) -> [ConfigurationDiagnostic] {
    var rank: [String: Int] = [:]
    for (index, file) in fileOrder.enumerated() where rank[file] == nil { rank[file] = index }
    return diagnostics.enumerated().sorted { left, right in
        let leftRank = rank[left.element.location.file] ?? Int.max
        let rightRank = rank[right.element.location.file] ?? Int.max
        if leftRank != rightRank { return leftRank < rightRank }
        if left.element.location.file != right.element.location.file {
            return left.element.location.file < right.element.location.file
        }
        if left.element.location.line != right.element.location.line {
            return left.element.location.line < right.element.location.line
        }
        return left.offset < right.offset
    }.map(\.element)
}
