// The typed result of reading a configuration file (spiped.conf(5)): global settings and one
// definition per pipe, with every default filled in and every path made absolute relative to
// the file that named it. Values only: no I/O, no keys loaded (see ConfigurationKeyCheck).
import SpipedSystem

/// A place in a configuration file: the file as it was opened (the main path, or an include
/// pattern's directory joined with the matched name) and a 1-based line (0: the whole file).
public struct SourceLocation: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The file's path.
    public var file: String
    /// The 1-based line number; 0 when the problem concerns the whole file.
    public var line: Int

    /// Creates a location.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `FILE:LINE`, or `FILE` alone for line 0.
    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// The `log-level` setting: how much the process logs.
public enum LogLevelSetting: String, Equatable, Sendable, CaseIterable {
    /// Only errors.
    case error
    /// Errors and warnings (the default).
    case warning
    /// Also routine events (connections, reloads).
    case info
    /// Everything, for debugging.
    case debug
}

/// Settings of the whole process (the keys before the first `[section]` of the main file).
public struct GlobalSettings: Equatable, Sendable {
    /// `pid-file`: where to write the pid when daemonizing (nil: not set in the file).
    public var pidFile: String?
    /// `user`: user and/or group to switch to after binding.
    public var privileges: PrivilegeDropSpec?
    /// `syslog`: send messages to syslog once running (default no).
    public var syslog: Bool
    /// `log-level` (nil: not set; the program's default applies).
    public var logLevel: LogLevelSetting?
    /// `metrics`: address of the Prometheus metrics listener (nil: none).
    public var metrics: AddressSpec?
    /// `drain-timeout`: seconds to wait for open connections on SIGTERM; 0 or +inf: no limit
    /// (nil: not set).
    public var drainTimeoutSeconds: Double?

    /// Creates settings; every argument defaults to "not set".
    public init(pidFile: String? = nil, privileges: PrivilegeDropSpec? = nil, syslog: Bool = false,
                logLevel: LogLevelSetting? = nil, metrics: AddressSpec? = nil, drainTimeoutSeconds: Double? = nil) {
        self.pidFile = pidFile
        self.privileges = privileges
        self.syslog = syslog
        self.logLevel = logLevel
        self.metrics = metrics
        self.drainTimeoutSeconds = drainTimeoutSeconds
    }
}

/// One `key = PATH` line of a pipe.
public struct KeyReference: Equatable, Hashable, Sendable {
    /// The key file (absolute when the configuration file's path was).
    public var path: String
    /// The `key =` line.
    public var location: SourceLocation

    /// Creates a reference.
    public init(path: String, location: SourceLocation) {
        self.path = path
        self.location = location
    }
}

/// One `route = KEYPATH ADDRESS` line of a decrypt pipe: clients holding that key go to that target.
public struct RouteDefinition: Equatable, Sendable {
    /// The key file.
    public var keyPath: String
    /// Where connections authenticated with that key are forwarded.
    public var target: AddressSpec
    /// The `route =` line.
    public var location: SourceLocation

    /// Creates a route.
    public init(keyPath: String, target: AddressSpec, location: SourceLocation) {
        self.keyPath = keyPath
        self.target = target
        self.location = location
    }
}

/// One pipe (one `[section]`): what a single spiped command line describes, plus the new
/// per-pipe settings. Defaults are those of the command line.
public struct PipeDefinition: Equatable, Sendable {
    /// Default of `max-connections` (as `-n`).
    public static let defaultMaxConnections = 100
    /// Default of `timeout` in seconds (as `-o`).
    public static let defaultTimeoutSeconds: Double = 5
    /// Default of `resolve-interval` in seconds (as `-r`).
    public static let defaultResolveIntervalSeconds: Double = 60
    /// Default of `pool-max-age` in seconds (as `--pool-max-age`).
    public static let defaultPoolMaxAgeSeconds: Double = 8
    /// Largest accepted `pool`.
    public static let maximumPool = 1000
    /// Longest accepted pipe name, in bytes.
    public static let maximumNameLength = 128

    /// The section name, unique in the configuration (used in logs and metrics).
    public var name: String
    /// The `[name]` line.
    public var location: SourceLocation
    /// `mode`: encrypt (`-e`) or decrypt (`-d`).
    public var mode: SpipedOptions.Mode
    /// `source`: the address to listen on (`-s`).
    public var source: AddressSpec
    /// `target`: the address to connect to (`-t`); nil exactly when `routes` is not empty.
    public var target: AddressSpec?
    /// `key` lines, in order: one on an encrypt pipe; one or more on a decrypt pipe without
    /// routes (a client holding any of them is served); none when `routes` is used.
    public var keys: [KeyReference]
    /// `route` lines, in order (decrypt pipes only).
    public var routes: [RouteDefinition]
    /// `fast` (`-f`).
    public var fast: Bool
    /// `require-forward-secrecy` (`-g`).
    public var requireForwardSecrecy: Bool
    /// `max-connections` (`-n`, default 100, 0 = no limit).
    public var maxConnections: Int
    /// `timeout` (`-o`, default 5, positive, may be +inf).
    public var timeoutSeconds: Double
    /// `resolve-interval` (`-r`, default 60); nil with `resolve = no` or an infinite interval.
    public var resolveIntervalSeconds: Double?
    /// `keepalive` (default yes; no is `-j`).
    public var keepAlive: Bool
    /// `bind-address` (`-b`).
    public var bindAddress: AddressSpec?
    /// `pool` (encrypt only, default 0).
    public var pool: Int
    /// `pool-max-age` (encrypt only, default 8).
    public var poolMaxAgeSeconds: Double
    /// `socket-mode`: permission bits of a Unix-socket source (nil: as the umask gives).
    public var socketMode: UInt32?
    /// `socket-group`: group of a Unix-socket source (nil: unchanged).
    public var socketGroup: String?

    /// Creates a pipe; the optional settings default as on the command line.
    public init(name: String, location: SourceLocation, mode: SpipedOptions.Mode, source: AddressSpec,
                target: AddressSpec?, keys: [KeyReference], routes: [RouteDefinition] = [],
                fast: Bool = false, requireForwardSecrecy: Bool = false,
                maxConnections: Int = PipeDefinition.defaultMaxConnections,
                timeoutSeconds: Double = PipeDefinition.defaultTimeoutSeconds,
                resolveIntervalSeconds: Double? = PipeDefinition.defaultResolveIntervalSeconds,
                keepAlive: Bool = true, bindAddress: AddressSpec? = nil, pool: Int = 0,
                poolMaxAgeSeconds: Double = PipeDefinition.defaultPoolMaxAgeSeconds,
                socketMode: UInt32? = nil, socketGroup: String? = nil) {
        self.name = name
        self.location = location
        self.mode = mode
        self.source = source
        self.target = target
        self.keys = keys
        self.routes = routes
        self.fast = fast
        self.requireForwardSecrecy = requireForwardSecrecy
        self.maxConnections = maxConnections
        self.timeoutSeconds = timeoutSeconds
        self.resolveIntervalSeconds = resolveIntervalSeconds
        self.keepAlive = keepAlive
        self.bindAddress = bindAddress
        self.pool = pool
        self.poolMaxAgeSeconds = poolMaxAgeSeconds
        self.socketMode = socketMode
        self.socketGroup = socketGroup
    }

    /// Every key file the pipe uses, with the line naming it: its `key` lines, then its routes' keys.
    public var keyReferences: [KeyReference] {
        keys + routes.map { KeyReference(path: $0.keyPath, location: $0.location) }
    }

    /// True when `other` configures the same pipe, ignoring where the lines are (for reload:
    /// a pipe whose section merely moved has not changed).
    public func hasSameSettings(as other: PipeDefinition) -> Bool {
        withoutLocations() == other.withoutLocations()
    }

    /// A copy with every location blanked.
    func withoutLocations() -> PipeDefinition {
        var copy = self
        let nowhere = SourceLocation(file: "", line: 0)
        copy.location = nowhere
        copy.keys = keys.map { KeyReference(path: $0.path, location: nowhere) }
        copy.routes = routes.map { RouteDefinition(keyPath: $0.keyPath, target: $0.target, location: nowhere) }
        return copy
    }
}

/// A whole configuration: the global settings and every pipe, in the order the sections were
/// read (included files at the place of their `include` line).
public struct ConfigurationFile: Equatable, Sendable {
    /// Process-wide settings.
    public var globals: GlobalSettings
    /// The pipes, in reading order; names and sources are unique.
    public var pipes: [PipeDefinition]
    /// Every file that was read, main file first, in reading order (diagnostics are sorted by it).
    public var sourceFiles: [String]

    /// Creates a configuration.
    public init(globals: GlobalSettings = GlobalSettings(), pipes: [PipeDefinition], sourceFiles: [String] = []) {
        self.globals = globals
        self.pipes = pipes
        self.sourceFiles = sourceFiles
    }

    /// The pipe with this name, if any.
    public func pipe(named name: String) -> PipeDefinition? {
        pipes.first { $0.name == name }
    }
}
