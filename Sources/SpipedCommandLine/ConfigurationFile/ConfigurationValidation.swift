// The settings of the global part and of one section as they are collected line by line, the
// rules a finished section must satisfy (required options, mode-dependent options, options
// that exclude each other), and the key under which two sources count as the same address.
import Glibc
import SpipedSystem

/// Global settings being collected.
struct GlobalDraft {
    /// First line of each option seen.
    var firstLines: [String: Int] = [:]
    /// The values so far.
    var settings = GlobalSettings()

    /// Parses one global option's (non-empty) value; returns the problem, if any.
    mutating func apply(_ option: String, _ value: String, directory: String) -> ConfigurationProblem? {
        switch option {
        case "pid-file":
            settings.pidFile = ConfigurationPaths.resolve(value, relativeTo: directory)
        case "user":
            switch ConfigurationValues.privileges(value) {
            case .success(let spec): settings.privileges = spec
            case .failure(let problem): return problem
            }
        case "syslog":
            switch ConfigurationValues.boolean(option, value) {
            case .success(let flag): settings.syslog = flag
            case .failure(let problem): return problem
            }
        case "log-level":
            switch ConfigurationValues.choice(option, value, LogLevelSetting.allCases.map(\.rawValue)) {
            case .success(let word): settings.logLevel = LogLevelSetting(rawValue: word)
            case .failure(let problem): return problem
            }
        case "metrics":
            switch ConfigurationValues.address(option, value) {
            case .success(let address): settings.metrics = address
            case .failure(let problem): return problem
            }
        case "drain-timeout":
            switch ConfigurationValues.duration(option, value) {
            case .success(let seconds): settings.drainTimeoutSeconds = seconds
            case .failure(let problem): return problem
            }
        default:
            preconditionFailure("not a global option: \(option)")
        }
        return nil
    }
}

/// One section being collected.
struct PipeDraft {
    /// The section name.
    let name: String
    /// The `[name]` line.
    let location: SourceLocation
    /// Directory of the file holding the section (relative key paths start there).
    let directory: String
    /// Set when any line of the section (or the section itself) had an error.
    var hasErrors = false
    /// First line of each option seen (even when its value was refused).
    var firstLines: [String: Int] = [:]

    var mode: SpipedOptions.Mode?
    var source: AddressSpec?
    var target: AddressSpec?
    var keys: [KeyReference] = []
    var routes: [RouteDefinition] = []
    var fast = false
    var requireForwardSecrecy = false
    var maxConnections = PipeDefinition.defaultMaxConnections
    var timeoutSeconds = PipeDefinition.defaultTimeoutSeconds
    var resolveIntervalSeconds: Double? = PipeDefinition.defaultResolveIntervalSeconds
    var resolves = true
    var keepAlive = true
    var bindAddress: AddressSpec?
    var pool = 0
    var poolMaxAgeSeconds = PipeDefinition.defaultPoolMaxAgeSeconds
    var socketMode: UInt32?
    var socketGroup: String?

    init(name: String, location: SourceLocation, directory: String) {
        self.name = name
        self.location = location
        self.directory = directory
    }

    /// Letters, digits, `-`, `_`, `.`; 1 to `PipeDefinition.maximumNameLength` bytes.
    static func isValidName(_ name: String) -> Bool {
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= PipeDefinition.maximumNameLength else { return false }
        return bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
    }

    /// Parses one pipe option's (non-empty) value; returns the problem, if any.
    mutating func apply(_ option: String, _ value: String, at location: SourceLocation) -> ConfigurationProblem? {
        /// Stores a parsed value or hands back the problem.
        func take<Value>(_ result: Result<Value, ConfigurationProblem>, _ store: (Value) -> Void) -> ConfigurationProblem? {
            switch result {
            case .success(let parsed): store(parsed); return nil
            case .failure(let problem): return problem
            }
        }
        switch option {
        case "mode":
            return take(ConfigurationValues.choice(option, value, ["encrypt", "decrypt"])) { mode = $0 == "encrypt" ? .encrypt : .decrypt }
        case "source":
            return take(ConfigurationValues.address(option, value)) { source = $0 }
        case "target":
            return take(ConfigurationValues.address(option, value)) { target = $0 }
        case "bind-address":
            return take(ConfigurationValues.bindAddress(option, value)) { bindAddress = $0 }
        case "key":
            if let problem = take(ConfigurationValues.keyPath(option, value, directory: directory), { keys.append(KeyReference(path: $0, location: location)) }) {
                return problem
            }
            return duplicateKeyProblem(keys[keys.count - 1].path, at: location.line)
        case "route":
            if let problem = take(ConfigurationValues.route(value, directory: directory), {
                routes.append(RouteDefinition(keyPath: $0.keyPath, target: $0.target, location: location))
            }) {
                return problem
            }
            return duplicateKeyProblem(routes[routes.count - 1].keyPath, at: location.line)
        case "fast":
            return take(ConfigurationValues.boolean(option, value)) { fast = $0 }
        case "require-forward-secrecy":
            return take(ConfigurationValues.boolean(option, value)) { requireForwardSecrecy = $0 }
        case "keepalive":
            return take(ConfigurationValues.boolean(option, value)) { keepAlive = $0 }
        case "resolve":
            return take(ConfigurationValues.boolean(option, value)) { resolves = $0 }
        case "max-connections":
            // As -n: 0 and anything past Int.max mean "no limit".
            return take(ConfigurationValues.count(option, value, hugeMeansZero: true)) { maxConnections = $0 }
        case "timeout":
            // As -o: 0 means the default.
            return take(ConfigurationValues.duration(option, value)) { timeoutSeconds = SpipedOptions.defaulted($0, to: PipeDefinition.defaultTimeoutSeconds) }
        case "resolve-interval":
            // As -r: 0 means the default; an infinite interval means "never re-resolve".
            return take(ConfigurationValues.duration(option, value)) { seconds in
                let interval = SpipedOptions.defaulted(seconds, to: PipeDefinition.defaultResolveIntervalSeconds)
                resolveIntervalSeconds = interval.isFinite ? interval : nil
            }
        case "pool":
            return take(ConfigurationValues.count(option, value, maximum: PipeDefinition.maximumPool)) { pool = $0 }
        case "pool-max-age":
            return take(ConfigurationValues.positiveDuration(option, value)) { poolMaxAgeSeconds = $0 }
        case "socket-mode":
            return take(ConfigurationValues.socketMode(value)) { socketMode = $0 }
        case "socket-group":
            socketGroup = value
            return nil
        default:
            preconditionFailure("not a pipe option: \(option)")
        }
    }

    /// After a `key` or `route` was added: a problem when its key file was already listed.
    func duplicateKeyProblem(_ path: String, at line: Int) -> ConfigurationProblem? {
        let earlier = (keys.map { ($0.path, $0.location.line) } + routes.map { ($0.keyPath, $0.location.line) })
            .filter { $0.0 == path && $0.1 != line }
            .map(\.1)
        guard let first = earlier.min() else { return nil }
        return .duplicateKey(path: path, firstLine: first)
    }

    /// The rules of a complete section; each problem with the line it concerns.
    func validate() -> [(ConfigurationProblem, SourceLocation)] {
        var problems: [(ConfigurationProblem, SourceLocation)] = []
        func at(_ line: Int) -> SourceLocation { SourceLocation(file: location.file, line: line) }
        func seen(_ option: String) -> Bool { firstLines[option] != nil }

        if !seen("mode") { problems.append((.missingOption(pipe: name, option: "mode", hint: "add 'mode = encrypt' or 'mode = decrypt'"), location)) }
        if !seen("source") { problems.append((.missingOption(pipe: name, option: "source", hint: "add 'source = ADDRESS'"), location)) }
        switch mode {
        case .encrypt?:
            if let line = firstLines["route"] { problems.append((.routeOnEncryptPipe(pipe: name), at(line))) }
            if keys.count > 1 { problems.append((.severalKeysOnEncryptPipe(pipe: name, firstLine: keys[0].location.line), keys[1].location)) }
            if !seen("target") { problems.append((.missingOption(pipe: name, option: "target", hint: "add 'target = ADDRESS'"), location)) }
            if !seen("key") { problems.append((.missingOption(pipe: name, option: "key", hint: "add 'key = FILE'"), location)) }
        case .decrypt?:
            for option in ["pool", "pool-max-age"] {
                if let line = firstLines[option] { problems.append((.encryptOnlyOption(option, pipe: name), at(line))) }
            }
            if let routeLine = firstLines["route"] {
                for option in ["target", "key"] {
                    if let line = firstLines[option] { problems.append((.routeMixedWithTarget(pipe: name, option: option, line: line), at(routeLine))) }
                }
            } else {
                if !seen("target") {
                    problems.append((.missingOption(pipe: name, option: "target", hint: "add 'target = ADDRESS', or 'route = KEYFILE ADDRESS' lines"), location))
                }
                if !seen("key") { problems.append((.missingOption(pipe: name, option: "key", hint: "add 'key = FILE'"), location)) }
            }
        case nil:
            break
        }
        if let source, !source.isUnixSocket {
            for option in ["socket-mode", "socket-group"] {
                if let line = firstLines[option] { problems.append((.unixSourceOnlyOption(option, source: source.description), at(line))) }
            }
        }
        if fast && requireForwardSecrecy, let fastLine = firstLines["fast"], let secrecyLine = firstLines["require-forward-secrecy"] {
            problems.append((.fastWithForwardSecrecy(pipe: name), at(max(fastLine, secrecyLine))))
        }
        if !resolves, let resolveLine = firstLines["resolve"], let intervalLine = firstLines["resolve-interval"] {
            problems.append((.resolveDisabledWithInterval(pipe: name, line: intervalLine), at(resolveLine)))
        }
        return problems
    }

    /// The finished pipe, or nil when the section had errors or lacks something required.
    var definition: PipeDefinition? {
        guard !hasErrors, let mode, let source else { return nil }
        if mode == .encrypt && (target == nil || keys.count != 1) { return nil }
        if mode == .decrypt && (routes.isEmpty ? (target == nil || keys.isEmpty) : (target != nil || !keys.isEmpty)) { return nil }
        return PipeDefinition(
            name: name, location: location, mode: mode, source: source, target: target, keys: keys, routes: routes,
            fast: fast, requireForwardSecrecy: requireForwardSecrecy, maxConnections: maxConnections,
            timeoutSeconds: timeoutSeconds, resolveIntervalSeconds: resolves ? resolveIntervalSeconds : nil,
            keepAlive: keepAlive, bindAddress: bindAddress, pool: pool, poolMaxAgeSeconds: poolMaxAgeSeconds,
            socketMode: socketMode, socketGroup: socketGroup)
    }
}

extension AddressSpec {
    /// True for a Unix-domain socket address.
    var isUnixSocket: Bool {
        if case .unix = self { return true }
        return false
    }
}

/// Rules across pipes.
enum ConfigurationValidation {
    /// A text that is equal for two sources exactly when they name the same listening address:
    /// IP literals in their canonical `inet_ntop` form, host names in lower case, Unix paths
    /// without repeated slashes or `.` components.
    static func listeningKey(_ address: AddressSpec) -> String {
        switch address {
        case .unix(let path): return "unix " + ConfigurationPaths.normalized(path)
        case .hostName(let host, let port): return "name \(host.lowercased()) \(port)"
        case .ipv4(let literal, let port): return "ip [\(canonical(literal, family: AF_INET))]:\(port)"
        case .ipv6(let literal, let port): return "ip [\(canonical(literal, family: AF_INET6))]:\(port)"
        }
    }

    /// The `inet_ntop` form of an IP literal (the literal itself if it does not convert).
    static func canonical(_ literal: String, family: Int32) -> String {
        var address = in6_addr()
        let converted = withUnsafeMutableBytes(of: &address) { inet_pton(family, literal, $0.baseAddress) }
        guard converted == 1 else { return literal }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = withUnsafeBytes(of: &address) { raw in
            text.withUnsafeMutableBufferPointer { inet_ntop(family, raw.baseAddress, $0.baseAddress, socklen_t(INET6_ADDRSTRLEN)) }
        }
        guard written != nil else { return literal }
        return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
