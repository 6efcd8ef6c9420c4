// The value syntaxes of configuration options: booleans, counts and durations (with the
// command line's own number rules, from NumberArguments), keywords, octal modes, addresses
// (SpipedSystem's AddressSpec) and paths. Each returns the typed value or the problem. Pure.
import SpipedSystem

/// Value parsers shared by the global and pipe options.
enum ConfigurationValues {
    /// yes/no, true/false, on/off, 1/0 (any letter case).
    static func boolean(_ option: String, _ value: String) -> Result<Bool, ConfigurationProblem> {
        switch value.lowercased() {
        case "yes", "true", "on", "1": return .success(true)
        case "no", "false", "off", "0": return .success(false)
        default: return .failure(.invalidBoolean(option: option, value: value))
        }
    }

    /// One of `choices` (any letter case); returns the choice as listed.
    static func choice(_ option: String, _ value: String, _ choices: [String]) -> Result<String, ConfigurationProblem> {
        let lowered = value.lowercased()
        guard let match = choices.first(where: { $0 == lowered }) else {
            return .failure(.invalidChoice(option: option, value: value, choices: choices))
        }
        return .success(match)
    }

    /// A count read like `-n` (C's strtoull, base 0: `0x10` and `010` work). Values past
    /// `Int.max` (as the wrapped-around negatives C accepts) become 0 when `hugeMeansZero`, as
    /// for `-n`; otherwise the value must not exceed `maximum`.
    static func count(_ option: String, _ value: String, maximum: Int = Int.max, hugeMeansZero: Bool = false) -> Result<Int, ConfigurationProblem> {
        switch NumberArguments.unsignedCount(value) {
        case .failure(.invalid): return .failure(.invalidNumber(option: option, value: value))
        case .failure(.outOfRange): return .failure(.numberOutOfRange(option: option, value: value, allowed: "0 to \(maximum)"))
        case .success(let number):
            if number > UInt64(Int.max) && hugeMeansZero { return .success(0) }
            guard number <= UInt64(maximum) else {
                return .failure(.numberOutOfRange(option: option, value: value, allowed: "0 to \(maximum)"))
            }
            return .success(Int(number))
        }
    }

    /// A duration read like `-o`/`-r` (C's strtod: `1.5`, `1e3`, `inf`), not negative, not NaN.
    static func duration(_ option: String, _ value: String) -> Result<Double, ConfigurationProblem> {
        switch NumberArguments.duration(value) {
        case .failure(.invalid): return .failure(.invalidNumber(option: option, value: value))
        case .failure(.outOfRange): return .failure(.numberOutOfRange(option: option, value: value, allowed: "0 to inf"))
        case .success(let seconds):
            guard !seconds.isNaN else { return .failure(.invalidNumber(option: option, value: value)) }
            return .success(seconds)
        }
    }

    /// A duration that must be positive.
    static func positiveDuration(_ option: String, _ value: String) -> Result<Double, ConfigurationProblem> {
        duration(option, value).flatMap { $0 > 0 ? .success($0) : .failure(.notPositive(option: option, value: value)) }
    }

    /// An octal permission mode from 0 to 777 (`660`, `0660`).
    static func socketMode(_ value: String) -> Result<UInt32, ConfigurationProblem> {
        let digits = value.utf8
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) else {
            return .failure(.invalidSocketMode(value))
        }
        let mode = digits.reduce(UInt32(0)) { $0 * 8 + UInt32($1 - UInt8(ascii: "0")) }
        guard mode <= 0o777 else { return .failure(.invalidSocketMode(value)) }
        return .success(mode)
    }

    /// A listening or connecting address (`-s`, `-t` syntax).
    static func address(_ option: String, _ value: String) -> Result<AddressSpec, ConfigurationProblem> {
        do { return .success(try AddressSpec.parse(value)) } catch { return .failure(.invalidAddress(option: option, value: value, error)) }
    }

    /// A local bind address (`-b` syntax: port 0 and port-less forms allowed).
    static func bindAddress(_ option: String, _ value: String) -> Result<AddressSpec, ConfigurationProblem> {
        do { return .success(try AddressSpec.parseBindAddress(value)) } catch { return .failure(.invalidAddress(option: option, value: value, error)) }
    }

    /// `user`, `:group` or `user:group`.
    static func privileges(_ value: String) -> Result<PrivilegeDropSpec, ConfigurationProblem> {
        do { return .success(try PrivilegeDropSpec.parse(value)) } catch { return .failure(.invalidPrivileges(value: value, error)) }
    }

    /// A key file path: `-` is refused; a relative path is taken relative to `directory`.
    static func keyPath(_ option: String, _ value: String, directory: String) -> Result<String, ConfigurationProblem> {
        guard value != "-" else { return .failure(.standardInputKey(option: option)) }
        return .success(ConfigurationPaths.resolve(value, relativeTo: directory))
    }

    /// `KEYFILE ADDRESS`: the address is the last blank-separated word, the key file all before it.
    static func route(_ value: String, directory: String) -> Result<(keyPath: String, target: AddressSpec), ConfigurationProblem> {
        let bytes = Array(value.utf8)
        guard let split = bytes.lastIndex(where: ConfigurationLexer.isBlank) else { return .failure(.invalidRoute(value)) }
        let keyText = String(decoding: ConfigurationLexer.trimmed(bytes[..<split]), as: UTF8.self)
        let addressText = String(decoding: bytes[(split + 1)...], as: UTF8.self)
        guard !keyText.isEmpty, !addressText.isEmpty else { return .failure(.invalidRoute(value)) }
        return keyPath("route", keyText, directory: directory).flatMap { path in
            address("route", addressText).map { (keyPath: path, target: $0) }
        }
    }
}
