// spiped: parse the command line, load the key, bind, daemonize, drop privileges, and run the
// proxy until SIGTERM — in the reference's order (see SpipedCommandLine for the options).
import Glibc
import SpipedCommandLine
import SpipedCryptoAccelerated
import SpipedProtocol
import SpipedProxy
import SpipedSystem

// The program runs in a plain (nonisolated) function rather than as top-level code, so
// nothing here is main-actor isolated and the Swift concurrency runtime (with libdispatch)
// is not linked in: it would only add start-up work and resident memory.
func runSpiped() -> Never {
    // A static build must not let glibc load name-service modules (see NameServices).
    NameServices.restrictToBuiltInSourcesIfStatic()
    let warnings = WarningSink(program: "spiped")

    /// Prints `spiped: message` (to stderr or syslog) and exits with status 1.
    func fail(_ message: String) -> Never {
        warnings.warn(message)
        exit(1)
    }

    let options: SpipedOptions
    do {
        switch try SpipedOptions.parse(Array(CommandLine.arguments.dropFirst())) {
        case .showVersion(let onStandardOutput):
            // The reference prints its version (-v) on stderr; --version uses stdout.
            if onStandardOutput { writeStandardOutput(SpipedUsage.version) } else { writeStandardError(SpipedUsage.version) }
            exit(0)
        case .showHelp:
            writeStandardOutput(SpipedUsage.help)
            exit(0)
        case .runConfiguration:
            // Wired by the configuration-file work (issue 12); until then refused.
            writeStandardError("spiped: --config is not supported by this build yet\n")
            exit(1)
        case .run(let parsed):
            options = parsed
        }
    } catch {
        writeStandardError(error.rendered(program: "spiped", usage: SpipedUsage.text))
        exit(1)
    }

    // -u names are looked up before anything forks: an unknown user or group must make this
    // command fail, not a daemon whose parent has already reported success.
    let privileges: ResolvedPrivileges?
    do {
        privileges = try options.privileges.map { spec throws(PrivilegeError) in try Privileges.resolve(spec) }
    } catch {
        fail("Failed to drop privileges: \(error.message)")
    }

    // The daemon's locked pid file (none in the foreground), removed at a clean exit.
    var pidFile: PidFile?
    // With -D the reference daemonizes before resolving names and then retries lookups.
    let daemonizeEarly = options.waitForDNS && !options.foreground
    if daemonizeEarly {
        do { pidFile = try Daemon.daemonize(pidFilePath: options.pidFilePath) } catch { fail("Failed to daemonize: \(error.message)") }
        if options.useSyslog { warnings.switchToSyslog() }
    }

    let backend = CryptoBackendSelection.best
    let key = loadKeyOrExit(path: options.keyFilePath, backend: backend, warnings: warnings)
    // The key is in memory: no core dumps, no ptrace by other processes of this user.
    do { try ProcessHardening.disableCoreDumps() } catch { fail("Cannot disable core dumps: \(error)") }

    var configuration = ProxyConfiguration(
        mode: options.mode == .encrypt ? .encrypt : .decrypt,
        source: options.source,
        target: options.target,
        key: key,
        handshake: HandshakeOptions(fast: options.fast, requireForwardSecrecy: options.requireForwardSecrecy),
        backend: backend
    )
    configuration.maxConnections = options.maxConnections
    configuration.timeoutSeconds = min(options.timeoutSeconds, longestTimeoutSeconds)
    configuration.resolveIntervalSeconds = options.resolveIntervalSeconds.map { min($0, longestTimeoutSeconds) }
    configuration.keepAlive = options.keepAlive
    configuration.bindAddress = options.bindAddress
    configuration.waitForDNS = options.waitForDNS
    // Warnings and errors as `spiped: message`; routine information is not shown (the reference
    // says nothing on SIGTERM, for instance).
    configuration.log = { level, message in
        if case .info = level { return }
        warnings.warn(message)
    }

    // Resolves the addresses and binds the source socket (the proxy starts no thread yet).
    let proxy: Proxy
    do { proxy = try Proxy(configuration: configuration) } catch { fail("\(error)") }

    if !options.foreground && !daemonizeEarly {
        do { pidFile = try Daemon.daemonize(pidFilePath: options.pidFilePath) } catch { fail("Failed to daemonize: \(error.message)") }
        if options.useSyslog { warnings.switchToSyslog() }
    }

    // Unlike the reference, --syslog applies in the foreground too (e.g. under a supervisor that
    // does not capture stderr); start-up errors above still went to stderr.
    if options.useSyslog && options.foreground { warnings.switchToSyslog() }

    if let privileges {
        do { try Privileges.drop(privileges) } catch { fail("Failed to drop privileges: \(error.message)") }
        // Changing ids resets the dumpable flag to fs.suid_dumpable: clear it again.
        do { try ProcessHardening.disableCoreDumps() } catch { fail("Cannot disable core dumps: \(error)") }
    }

    // Writes to a peer that has gone must fail with EPIPE, not kill the process.
    signal(SIGPIPE, SIG_IGN)

    // SIGTERM: the proxy stops accepting, lets every connection end, and removes its Unix
    // socket file (if the path still names it); then the pid file goes too.
    do {
        try proxy.run()
    } catch {
        pidFile?.remove()
        fail("\(error)")
    }
    pidFile?.remove()
    exit(0)
}

runSpiped()
