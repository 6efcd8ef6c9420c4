// Running the spiped daemon, for a command-line pipe or a configuration file: look up -u before
// anything forks, load keys, bind every source, daemonize, drop privileges, and run the engine
// until SIGTERM, reloading on SIGHUP — in the reference's order.
import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedProxy
import SpipedSystem

/// What the daemon needs besides its pipes: process-wide settings from the command line or the
/// configuration file's globals.
public struct DaemonSettings: Sendable {
    /// `-F` (or `--config ... -F`): stay in the foreground, no pid file.
    public var foreground: Bool
    /// `-D`: daemonize before resolving names and retry lookups.
    public var waitForDNS: Bool
    /// `-p` / `pid-file =`: where the daemon writes its pid (nil: none).
    public var pidFilePath: String?
    /// `--syslog` / `syslog = yes`.
    public var useSyslog: Bool
    /// `-u` / `user =`.
    public var privileges: PrivilegeDropSpec?
    /// `--log-level` / `log-level =`.
    public var logLevel: ProxyLogLevel
    /// `--drain-timeout` / `drain-timeout =` (nil or 0: no limit).
    public var drainTimeoutSeconds: Double?
    /// `--metrics` / `metrics =`: where to serve Prometheus metrics (nil: nowhere).
    public var metricsAddress: AddressSpec?
    /// What the crypto engine selection reported, logged at start-up (nil: nothing to log).
    public var cryptoNotes: CryptoEngineNotes?

    /// Settings for a daemon in the background with the default log level.
    public init(foreground: Bool, waitForDNS: Bool, pidFilePath: String?, useSyslog: Bool,
                privileges: PrivilegeDropSpec?, logLevel: ProxyLogLevel, drainTimeoutSeconds: Double?) {
        self.foreground = foreground
        self.waitForDNS = waitForDNS
        self.pidFilePath = pidFilePath
        self.useSyslog = useSyslog
        self.privileges = privileges
        self.logLevel = logLevel
        self.drainTimeoutSeconds = drainTimeoutSeconds
        metricsAddress = nil
        cryptoNotes = nil
    }
}

/// The crypto engine selection's report (from SpipedCryptoAccelerated, which this module does
/// not import), logged once the daemon's log exists.
public struct CryptoEngineNotes: Sendable {
    /// Each primitive's engines with their start-up rates, the chosen one marked (debug level).
    public var report: String
    /// Problems with the engine environment variables (warning level).
    public var problems: [String]

    /// Notes from the selection's report line and problems.
    public init(report: String, problems: [String]) {
        self.report = report
        self.problems = problems
    }
}

/// Where the daemon's pipes come from, at start and at every reload.
public protocol DaemonPipeSource: Sendable {
    /// Loads the pipes (reading key files again). Errors are whole messages, one per problem.
    func loadPipes(backend: CryptoBackend, log: ProxyLog, starting: Bool) -> Result<[PipeConfiguration], DaemonLoadFailure>
}

/// Why pipes could not be loaded: every problem, each a full sentence (with file and line
/// where it has one).
public struct DaemonLoadFailure: Error, Sendable {
    /// The messages, in order.
    public var messages: [String]

    /// A failure with these messages.
    public init(messages: [String]) { self.messages = messages }
}

/// Runs the daemon and exits: status 0 after a clean stop, 1 on a start-up failure.
public func runSpipedDaemon(settings: DaemonSettings, pipes source: DaemonPipeSource, backend: CryptoBackend) -> Never {
    let warnings = WarningSink(program: "spiped")
    func fail(_ message: String) -> Never {
        warnings.warn(message)
        exit(1)
    }

    // Sockets passed by systemd (socket activation) are taken before anything else starts.
    let inherited: [InheritedListener]
    do {
        inherited = try SocketActivation.inheritedListeners()
    } catch {
        fail("socket activation: \(error)")
    }
    let notifier = ServiceNotifier.fromEnvironment(unsettingEnvironment: true)
    let metricsAddress: SocketAddress?
    do {
        metricsAddress = try settings.metricsAddress.map { spec throws(AddressResolutionError) in try AddressResolver.resolve(spec, passive: true)[0] }
    } catch {
        fail("--metrics: \(error.description)")
    }

    // -u names are looked up before anything forks: an unknown user or group must make this
    // command fail, not a daemon whose parent has already reported success.
    let privileges: ResolvedPrivileges?
    do {
        privileges = try settings.privileges.map { spec throws(PrivilegeError) in try Privileges.resolve(spec) }
    } catch {
        fail("Failed to drop privileges: \(error.message)")
    }

    // The daemon's locked pid file (none in the foreground), removed at a clean exit.
    var pidFile: PidFile?
    // With -D the reference daemonizes before resolving names and then retries lookups.
    let daemonizeEarly = settings.waitForDNS && !settings.foreground
    if daemonizeEarly {
        do { pidFile = try Daemon.daemonize(pidFilePath: settings.pidFilePath) } catch { fail("Failed to daemonize: \(error.message)") }
        if settings.useSyslog { warnings.switchToSyslog() }
    }

    let log = ProxyLog(minimumLevel: settings.logLevel, sink: LogLineFormat.sink(for: warnings))
    if let notes = settings.cryptoNotes {
        for problem in notes.problems { log.log(.warning, problem) }
        log.log(.debug, "crypto engines (fastest usable, marked *): " + notes.report)
    }
    let pipes: [PipeConfiguration]
    switch source.loadPipes(backend: backend, log: log, starting: true) {
    case .success(let loaded): pipes = loaded
    case .failure(let failure):
        for message in failure.messages.dropLast() { warnings.warn(message) }
        fail(failure.messages.last ?? "cannot load the configuration")
    }
    // The keys are in memory: no core dumps, no ptrace by other processes of this user.
    do { try ProcessHardening.disableCoreDumps() } catch { fail("Cannot disable core dumps: \(error)") }

    var options = EngineOptions(backend: backend, log: log)
    if let drain = settings.drainTimeoutSeconds, drain > 0 { options.drainTimeoutSeconds = drain }
    let registry = metricsAddress.map { _ in MetricsRegistry(version: spipedVersion) }
    options.metrics = registry
    options.serviceNotifier = notifier
    options.inheritedListeners = inherited
    // Resolves the addresses and binds every source (the engine starts no thread yet).
    let proxy: Proxy
    do { proxy = try Proxy(pipes: pipes, options: options) } catch { fail("\(error)") }
    // Start-up's temporary buffers (self-tests, engine measurement, key files) go back now.
    ProcessMemory.returnFreeHeapToSystem()

    if !settings.foreground && !daemonizeEarly {
        do { pidFile = try Daemon.daemonize(pidFilePath: settings.pidFilePath) } catch { fail("Failed to daemonize: \(error.message)") }
        if settings.useSyslog { warnings.switchToSyslog() }
    }
    // Unlike the reference, --syslog applies in the foreground too (e.g. under a supervisor that
    // does not capture stderr); start-up errors above still went to stderr.
    if settings.useSyslog && settings.foreground { warnings.switchToSyslog() }

    // The metrics server's thread must not take SIGTERM/SIGINT/SIGHUP (the engine reads them
    // from a signalfd), so they are blocked first; it binds before -u (a port below 1024).
    TerminationSignals.blockInCallingThread()
    var metricsServer: MetricsServer?
    if let metricsAddress, let registry {
        do {
            metricsServer = try MetricsServer(address: metricsAddress, registry: registry)
        } catch {
            fail("cannot serve metrics on \(settings.metricsAddress.map { "\($0)" } ?? ""): \(error)")
        }
        if let bound = metricsServer?.localAddress {
            log.log(.notice, "metrics: serving http://\(bound)/metrics")
        }
    }

    if let privileges {
        do { try Privileges.drop(privileges) } catch { fail("Failed to drop privileges: \(error.message)") }
        // Changing ids resets the dumpable flag to fs.suid_dumpable: clear it again.
        do { try ProcessHardening.disableCoreDumps() } catch { fail("Cannot disable core dumps: \(error)") }
    }

    // SIGHUP: load the pipes again (configuration file and key files) and apply them to new
    // connections; on any error the running pipes stay exactly as they are.
    proxy.reloadHandler = { proxy in
        switch source.loadPipes(backend: backend, log: log, starting: false) {
        case .failure(let failure):
            for message in failure.messages { log.log(.error, message) }
            log.log(.error, "reload failed: keeping the running configuration")
        case .success(let pipes):
            do {
                let summary = try proxy.apply(pipes: pipes)
                log.log(.notice, summary.description)
            } catch {
                log.log(.error, "reload failed: \(error); keeping the running configuration")
            }
        }
    }

    // Writes to a peer that has gone must fail with EPIPE, not kill the process.
    signal(SIGPIPE, SIG_IGN)

    // SIGTERM: the engine stops accepting, lets every connection end, and removes its Unix
    // socket files (if the paths still name them); then the pid file goes too.
    do {
        try proxy.run()
    } catch {
        metricsServer?.stop()
        pidFile?.remove()
        fail("\(error)")
    }
    metricsServer?.stop()
    pidFile?.remove()
    exit(0)
}

extension SpipedLogLevel {
    /// The engine's level for this setting.
    public var proxyLevel: ProxyLogLevel {
        switch self {
        case .error: return .error
        case .warning: return .warning
        case .info: return .info
        case .debug: return .debug
        }
    }
}

extension LogLevelSetting {
    /// The engine's level for this setting (the same names as `--log-level`).
    public var proxyLevel: ProxyLogLevel { SpipedLogLevel(rawValue: rawValue)?.proxyLevel ?? .warning }
}
