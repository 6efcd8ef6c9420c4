// Where the daemon's pipes come from: one command line (`spiped -e|-d -s -t -k ...`), whose
// SIGHUP re-reads the key file, or a configuration file (`spiped --config FILE`), whose SIGHUP
// re-reads the file and every key file.
import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedProxy
import SpipedSystem

/// The one pipe of a command line. A reload re-reads the `-k` file (not `-k -`: standard
/// input was consumed at start, so that key stays).
public struct CommandLinePipeSource: DaemonPipeSource {
    /// The parsed command line.
    public let options: SpipedOptions
    /// The key read at start, kept for `-k -`.
    private let startKey = KeyHolder()

    /// The pipe of `options`.
    public init(options: SpipedOptions) { self.options = options }

    /// Loads the key and describes the pipe.
    public func loadPipes(backend: CryptoBackend, log: ProxyLog, starting: Bool) -> Result<[PipeConfiguration], DaemonLoadFailure> {
        let key: SpipedKey
        if !starting && options.keyFilePath == "-", let kept = startKey.key {
            log.log(.notice, "reload: the key came from standard input; keeping it")
            key = kept
        } else {
            do {
                let loaded = try SpipedKey.load(path: options.keyFilePath, backend: backend)
                for warning in loaded.warnings { log.log(.warning, warning.message(path: options.keyFilePath)) }
                key = loaded.key
            } catch {
                return .failure(DaemonLoadFailure(messages: [keyLoadFailureMessage(path: options.keyFilePath, error: error)]))
            }
        }
        if starting { startKey.key = key }
        // The same description as a configuration file's pipe (ConfigurationFile(commandLine:)).
        guard let definition = ConfigurationFile(commandLine: options).pipes.first else {
            return .failure(DaemonLoadFailure(messages: ["no pipe on the command line"]))
        }
        return ConfigurationFilePipeSource.pipeConfiguration(definition, keys: [options.keyFilePath: key],
                                                             waitForDNS: options.waitForDNS).map { [$0] }
    }
}

/// The key a command-line pipe read at start (set once, on the main thread, before any reload).
final class KeyHolder: @unchecked Sendable {
    var key: SpipedKey?
}

/// The pipes of a configuration file.
public struct ConfigurationFilePipeSource: DaemonPipeSource {
    /// The file, as an absolute path (relative paths inside it are relative to it).
    public let path: String
    /// `-D`: targets that do not resolve yet are retried.
    public let waitForDNS: Bool

    /// The pipes of the file at `path`.
    public init(path: String, waitForDNS: Bool) {
        self.path = path
        self.waitForDNS = waitForDNS
    }

    /// Parses the file, loads every key file, and describes the pipes; every problem is reported.
    public func loadPipes(backend: CryptoBackend, log: ProxyLog, starting: Bool) -> Result<[PipeConfiguration], DaemonLoadFailure> {
        let file: ConfigurationFile
        do {
            file = try ConfigurationFileParser.parse(path: path)
        } catch {
            return .failure(DaemonLoadFailure(messages: everyConfigurationError(path: path, parseErrors: error).map(\.description)))
        }
        let loaded = file.loadKeys(backend: backend)
        var messages: [String] = []
        for diagnostic in loaded.diagnostics {
            if diagnostic.isError { messages.append(diagnostic.description) } else { log.log(.warning, diagnostic.description) }
        }
        if !messages.isEmpty { return .failure(DaemonLoadFailure(messages: messages)) }
        var pipes: [PipeConfiguration] = []
        for definition in file.pipes {
            switch ConfigurationFilePipeSource.pipeConfiguration(definition, keys: loaded.keys, waitForDNS: waitForDNS) {
            case .success(let pipe): pipes.append(pipe)
            case .failure(let failure): messages.append(contentsOf: failure.messages)
            }
        }
        if !messages.isEmpty { return .failure(DaemonLoadFailure(messages: messages)) }
        return .success(pipes)
    }

    /// The engine's description of one `[section]` (or of the command line's one pipe), with
    /// its keys loaded (by path).
    static func pipeConfiguration(_ definition: PipeDefinition, keys: [String: SpipedKey],
                                  waitForDNS: Bool) -> Result<PipeConfiguration, DaemonLoadFailure> {
        var routes: [PipeRoute] = []
        var problems: [String] = []
        func key(_ path: String, at location: SourceLocation) -> SpipedKey? {
            guard let key = keys[path] else {
                problems.append("\(location): key file \(path) was not loaded")
                return nil
            }
            return key
        }
        if definition.routes.isEmpty {
            if let target = definition.target {
                for reference in definition.keys {
                    if let loaded = key(reference.path, at: reference.location) {
                        routes.append(PipeRoute(key: loaded, target: target, keyDescription: reference.path))
                    }
                }
            }
        } else {
            for route in definition.routes {
                if let loaded = key(route.keyPath, at: route.location) {
                    routes.append(PipeRoute(key: loaded, target: route.target, keyDescription: route.keyPath))
                }
            }
        }
        // Two routes with the same key would make the target ambiguous.
        for (index, route) in routes.enumerated() {
            if let earlier = routes[..<index].firstIndex(where: { $0.key.isSameKey(as: route.key) && $0.target != route.target }) {
                problems.append("\(definition.location): [\(definition.name)]: \(routes[earlier].keyDescription) and \(route.keyDescription) hold the same key but route to different targets")
            }
        }
        var pipe = PipeConfiguration(name: definition.name, mode: definition.mode == .encrypt ? .encrypt : .decrypt,
                                     source: definition.source, routes: routes,
                                     handshake: HandshakeOptions(fast: definition.fast, requireForwardSecrecy: definition.requireForwardSecrecy))
        pipe.maxConnections = definition.maxConnections
        pipe.timeoutSeconds = min(definition.timeoutSeconds, longestTimeoutSeconds)
        pipe.resolveIntervalSeconds = definition.resolveIntervalSeconds.map { min($0, longestTimeoutSeconds) }
        pipe.keepAlive = definition.keepAlive
        pipe.bindAddress = definition.bindAddress
        pipe.waitForDNS = waitForDNS
        pipe.socketMode = definition.socketMode
        pipe.poolSize = definition.pool
        pipe.poolMaxAgeSeconds = min(definition.poolMaxAgeSeconds, longestTimeoutSeconds)
        if let group = definition.socketGroup {
            if let gid = SocketOwnership.groupID(group) {
                pipe.socketGroup = gid
            } else {
                problems.append("\(definition.location): [\(definition.name)]: socket-group: No such group: \(group)")
            }
        }
        if !problems.isEmpty { return .failure(DaemonLoadFailure(messages: problems)) }
        return .success(pipe)
    }
}

/// Every error of the configuration file at `path`, which failed to parse with `parseErrors`,
/// as `--check` reports them: the key files too, not only the syntax. Users are not looked up
/// (the daemon resolves `user =` itself once the file parses; a reload does not apply it).
/// Should the file have changed since it was parsed, `parseErrors` stand.
func everyConfigurationError(path: String, parseErrors: ConfigurationErrors) -> [ConfigurationDiagnostic] {
    let anyUser = ConfigurationAccountLookup(userExists: { _ in true },
                                             groupExists: ConfigurationAccountLookup.system.groupExists)
    let errors = ConfigurationFileParser.check(path: path, accounts: anyUser).diagnostics.filter(\.isError)
    return errors.isEmpty ? parseErrors.diagnostics : errors
}

/// Group lookups for `socket-group`.
enum SocketOwnership {
    /// The gid of a group name or decimal number.
    static func groupID(_ name: String) -> gid_t? {
        if let entry = getgrnam(name) { return entry.pointee.gr_gid }
        return UInt32(name)
    }
}
