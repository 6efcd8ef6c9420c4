import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedSystem
import Synchronization

/// Settings of the engine itself, shared by all pipes.
public struct EngineOptions: Sendable {
    /// Event-loop threads (shared by all pipes); default: the CPUs this process may run on.
    public var eventLoopCount: Int
    /// The crypto implementation (chosen by the caller).
    public var backend: CryptoBackend
    /// Where messages go.
    public var log: ProxyLog
    /// After SIGTERM/SIGINT, how long to wait for open connections before exiting anyway
    /// (nil: as long as they last).
    public var drainTimeoutSeconds: Double?
    /// Per-pipe counters for `--metrics` (nil: not counted).
    public var metrics: MetricsRegistry?
    /// systemd's notification socket (`Type=notify`): READY, RELOADING, STOPPING, STATUS.
    public var serviceNotifier: ServiceNotifier?
    /// Listening sockets passed by systemd (socket activation), used in place of binding a
    /// pipe's source when the name (`FileDescriptorName=`) or the address matches.
    public var inheritedListeners: [InheritedListener]

    /// Options with one loop per CPU and no drain limit.
    public init(backend: CryptoBackend, log: ProxyLog) {
        eventLoopCount = SystemLimits.usableProcessorCount
        self.backend = backend
        self.log = log
        drainTimeoutSeconds = nil
        metrics = nil
        serviceNotifier = nil
        inheritedListeners = []
    }
}

/// What a reload changed (pipe names).
public struct ReloadSummary: Sendable, Equatable, CustomStringConvertible {
    /// Pipes that started listening.
    public var added: [String] = []
    /// Pipes that stopped accepting (their open connections continue).
    public var removed: [String] = []
    /// Pipes whose settings or keys changed (for new connections).
    public var updated: [String] = []
    /// Pipes left as they were (keys re-read, same settings).
    public var unchanged: [String] = []

    /// "reload: 1 added (b), 1 removed (c), 2 updated (a, d), 0 unchanged".
    public var description: String {
        func part(_ names: [String], _ what: String) -> String {
            names.isEmpty ? "0 \(what)" : "\(names.count) \(what) (\(names.joined(separator: ", ")))"
        }
        return "reload: " + [part(added, "added"), part(removed, "removed"), part(updated, "updated"),
                             part(unchanged, "unchanged")].joined(separator: ", ")
    }
}

/// The spiped daemon's engine: serves any number of pipes (listeners with their settings) on
/// one set of event loops (one per CPU) with one key-pair pool, one resolver thread and one
/// log thread. Each pipe accepts on its source, connects each connection to its target, and
/// encrypts or decrypts between them.
///
/// `apply(pipes:)` (on SIGHUP, through `reloadHandler`) adds, removes and updates pipes while
/// connections flow: each connection keeps the settings snapshot it was accepted with.
public final class Proxy: @unchecked Sendable {
    private let options: EngineOptions
    private let context: EngineContext
    private let controlNotifier: EventNotifier
    private let refresher: TargetRefresher
    private let hasRun = Atomic<Bool>(false)
    /// Serialises `apply` (the control thread, or a test).
    private let reconfiguration = Mutex<Int>(0)
    /// Set by `requestReload()`; the control thread runs the reload handler.
    private let reloadRequested = Atomic<Bool>(false)
    private let handler = Mutex<(@Sendable (Proxy) -> Void)?>(nil)
    /// Sockets passed by systemd that no pipe has taken yet.
    private let inherited: Mutex<[InheritedListener]>

    /// The address the first pipe listens on (with the port the kernel chose, if port 0).
    public let listeningAddress: SocketAddress

    /// One pipe from a command line (`spiped -e|-d -s -t -k ...`): see `init(pipes:options:)`.
    public convenience init(configuration: ProxyConfiguration) throws(ProxyError) {
        var pipe = PipeConfiguration(name: configuration.source.displayText, mode: configuration.mode,
                                     source: configuration.source,
                                     routes: [PipeRoute(key: configuration.key, target: configuration.target)],
                                     handshake: configuration.handshake)
        pipe.maxConnections = configuration.maxConnections
        pipe.timeoutSeconds = configuration.timeoutSeconds
        pipe.resolveIntervalSeconds = configuration.resolveIntervalSeconds
        pipe.keepAlive = configuration.keepAlive
        pipe.bindAddress = configuration.bindAddress
        pipe.waitForDNS = configuration.waitForDNS
        var options = EngineOptions(backend: configuration.backend,
                                    log: ProxyLog(minimumLevel: .debug, sink: configuration.log))
        options.eventLoopCount = configuration.eventLoopCount
        try self.init(pipes: [pipe], options: options)
    }

    /// Resolves every pipe's source and targets and binds+listens on each source (so
    /// configuration errors surface before the caller daemonizes). Starts no threads.
    /// With a pipe's `waitForDNS`, a target that does not resolve yet is retried in `run()`.
    public init(pipes configurations: [PipeConfiguration], options: EngineOptions) throws(ProxyError) {
        guard options.eventLoopCount >= 1 else { throw .invalidConfiguration("event loop count must be at least 1") }
        guard !configurations.isEmpty else { throw .invalidConfiguration("no pipe to run") }
        self.options = options
        inherited = Mutex(options.inheritedListeners)
        do {
            controlNotifier = try EventNotifier()
            refresher = try TargetRefresher()
        } catch {
            throw .system(error)
        }
        let needsPool = configurations.contains { !$0.handshake.fast }
        let pool: DHKeyPairPool?
        do {
            pool = needsPool ? try DHKeyPairPool(capacity: 4 * options.eventLoopCount, backend: options.backend) : nil
        } catch {
            throw .system(error)
        }
        context = EngineContext(log: options.log, keyPairPool: pool, backend: options.backend, controlNotifier: controlNotifier)
        var pipes: [Pipe] = []
        do throws(ProxyError) {
            for configuration in configurations {
                pipes.append(try Proxy.makePipe(configuration, identifier: pipes.count + 1, options: options, inherited: inherited))
            }
        } catch {
            for pipe in pipes {
                Proxy.removeSourceFile(of: pipe)
                pipe.closeListener()
            }
            throw error
        }
        listeningAddress = pipes[0].listeningAddress
        nextPipeIdentifier = pipes.count + 1
        context.publish(pipes: pipes)
        for unused in inherited.withLock({ $0 }) {
            options.log.log(.warning, "a listening socket passed by systemd\(unused.name.map { " (\($0))" } ?? "") matches no pipe; closing it")
            unused.descriptor.close()
        }
        inherited.withLock { $0.removeAll() }
    }

    deinit {
        if !hasRun.load(ordering: .relaxed) {
            for pipe in context.pipes.list { pipe.closeListener() }
        }
    }

    private var nextPipeIdentifier = 1

    /// Builds a pipe: settings (targets resolved) and a listening socket on its source.
    private static func makePipe(_ configuration: PipeConfiguration, identifier: Int, options: EngineOptions,
                                 inherited: borrowing Mutex<[InheritedListener]>) throws(ProxyError) -> Pipe {
        let settings = try PipeSettings(configuration, backend: options.backend, log: options.log, metrics: options.metrics)
        let sourceAddresses: [SocketAddress]
        do {
            sourceAddresses = try AddressResolver.resolve(configuration.source, passive: true)
        } catch {
            throw .addressResolutionFailed(error)
        }
        let source = sourceAddresses[0]
        // Socket activation: systemd bound the source already (matched by name, else address).
        let pipeName = configuration.name
        let passed = inherited.withLock { listeners -> InheritedListener? in
            var index: Int? = listeners.firstIndex { (listener: InheritedListener) -> Bool in listener.name == pipeName }
            if index == nil {
                index = listeners.firstIndex { (listener: InheritedListener) -> Bool in listener.localAddress == source }
            }
            guard let index else { return nil }
            return listeners.remove(at: index)
        }
        if let passed {
            let bound = passed.localAddress ?? source
            options.log.log(.info, "\(configuration.name): using the listening socket passed by systemd\(passed.name.map { " (\($0))" } ?? "")")
            settings.metrics?.setListening(true)
            return Pipe(identifier: identifier, source: configuration.source, listener: passed.descriptor, listeningAddress: bound,
                        unixSocketFile: nil, settings: settings)
        }
        let (listener, socketFile) = try Proxy.listen(on: source, written: configuration.source.displayText)
        let bound: SocketAddress
        do throws(SystemError) {
            if let path = source.unixPath {
                // --socket-mode / --socket-group, so clients that are not root may connect.
                if let mode = configuration.socketMode, chmod(path, mode_t(mode)) != 0 {
                    throw SystemError("chmod \(path)", Errno(rawValue: errno))
                }
                if let group = configuration.socketGroup, chown(path, uid_t.max, gid_t(group)) != 0 {
                    throw SystemError("chown \(path)", Errno(rawValue: errno))
                }
            }
            bound = try listener.localAddress()
        } catch {
            socketFile?.removeIfStillOurs()
            listener.close()
            throw .system(error)
        }
        settings.metrics?.setListening(true)
        return Pipe(identifier: identifier, source: configuration.source, listener: listener, listeningAddress: bound,
                    unixSocketFile: socketFile, settings: settings)
    }

    /// Creates, binds and listens on a non-blocking socket. A Unix socket file left by a dead
    /// process is replaced; any other file at the path is refused (see `UnixSocketFile.bind`).
    private static func listen(on address: SocketAddress, written: String) throws(ProxyError) -> (FileDescriptor, UnixSocketFile?) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.streamSocket(family: address.family)
        } catch {
            throw .listenFailed(address: written, error)
        }
        let socketFile: UnixSocketFile?
        do throws(UnixSocketBindError) {
            if address.isInternet {
                do throws(SystemError) {
                    try fd.setReuseAddress()
                    try fd.bind(to: address)
                } catch {
                    throw .system(error)
                }
                socketFile = nil
            } else {
                socketFile = try UnixSocketFile.bind(fd, to: address)
            }
        } catch {
            fd.close()
            switch error {
            case .system(let cause): throw .listenFailed(address: written, cause)
            case .notASocket(let path, let kind): throw .sourcePathOccupied(path: path, by: kind)
            }
        }
        do throws(SystemError) {
            try fd.listen()
        } catch {
            socketFile?.removeIfStillOurs()
            fd.close()
            throw .listenFailed(address: written, error)
        }
        return (fd, socketFile)
    }

    /// Removes a pipe's Unix-socket file when the pipe ends, if the path still is the socket we
    /// bound (call it while the listener is open, so our inode number cannot have been reused).
    private static func removeSourceFile(of pipe: Pipe) {
        pipe.unixSocketFile?.removeIfStillOurs()
    }

    // MARK: - Reload

    /// Called on the control thread when SIGHUP arrives (or `requestReload()`): typically
    /// re-reads the configuration and calls `apply(pipes:)`. Set it before `run()`.
    public var reloadHandler: (@Sendable (Proxy) -> Void)? {
        get { handler.withLock { $0 } }
        set { handler.withLock { $0 = newValue } }
    }

    /// Asks the control thread to run `reloadHandler` (as SIGHUP does). Any thread.
    public func requestReload() {
        reloadRequested.store(true, ordering: .releasing)
        controlNotifier.signal()
    }

    /// Makes the running pipes match `configurations`: pipes are matched by source; a matched
    /// pipe takes the new settings (name, keys, targets, limits) for connections accepted from
    /// now on; a source not served yet gets a new listener; a pipe whose source is gone stops
    /// accepting, and its open connections continue until they end. Open connections are never
    /// touched: they keep the keys and target they started with.
    ///
    /// All or nothing: every new setting is built and every new listener bound first; if
    /// anything fails, the running pipes are left exactly as they were and the error is thrown.
    @discardableResult
    public func apply(pipes configurations: [PipeConfiguration]) throws(ProxyError) -> ReloadSummary {
        try reconfiguration.withLock { _ throws(ProxyError) -> ReloadSummary in
            try applyLocked(configurations)
        }
    }

    private func applyLocked(_ configurations: [PipeConfiguration]) throws(ProxyError) -> ReloadSummary {
        guard !configurations.isEmpty else { throw .invalidConfiguration("no pipe to run") }
        let current = context.pipes.list.filter { !$0.isRetired }
        var summary = ReloadSummary()
        var updates: [(Pipe, PipeSettings)] = []
        var created: [Pipe] = []
        var kept: Set<ObjectIdentifier> = []
        do throws(ProxyError) {
            for configuration in configurations {
                if let existing = current.first(where: { $0.source == configuration.source }) {
                    let previous = existing.settings
                    let settings = try PipeSettings(configuration, backend: options.backend, log: options.log,
                                                    metrics: options.metrics, reusing: previous)
                    updates.append((existing, settings))
                    kept.insert(ObjectIdentifier(existing))
                    if Proxy.sameSettings(previous, settings) {
                        summary.unchanged.append(settings.name)
                    } else {
                        summary.updated.append(settings.name)
                    }
                } else {
                    let pipe = try Proxy.makePipe(configuration, identifier: nextPipeIdentifier, options: options, inherited: inherited)
                    nextPipeIdentifier += 1
                    created.append(pipe)
                    summary.added.append(configuration.name)
                }
            }
        } catch {
            for pipe in created {
                Proxy.removeSourceFile(of: pipe)
                pipe.closeListener()
            }
            throw error
        }
        // Everything is ready: swap the settings, retire what is gone, publish the new list.
        for (pipe, settings) in updates { pipe.replaceSettings(settings) }
        var retiredNow: [Pipe] = []
        for pipe in current where !kept.contains(ObjectIdentifier(pipe)) {
            pipe.settings.metrics?.setListening(false)
            pipe.retire()
            Proxy.removeSourceFile(of: pipe)
            retiredNow.append(pipe)
            summary.removed.append(pipe.name)
        }
        let stillRetiring = context.pipes.list.filter { $0.isRetired }
        context.publish(pipes: updates.map(\.0) + created + stillRetiring + retiredNow)
        refresher.replace(with: (updates.map(\.1) + created.map(\.settings)).flatMap(\.refreshedTargets))
        options.metrics?.retain(pipes: updates.map(\.1.name) + created.map(\.name))
        for pipe in created { logListening(pipe) }
        return summary
    }

    /// The start-up line of a pipe, at start and for a pipe a reload added.
    private func logListening(_ pipe: Pipe) {
        options.log.log(.notice, "\(pipe.name): listening on \(pipe.source.displayText): \(pipe.settings.summary); \(options.eventLoopCount) event loop\(options.eventLoopCount == 1 ? "" : "s")")
    }

    /// Whether two snapshots would treat a new connection the same way.
    private static func sameSettings(_ a: PipeSettings, _ b: PipeSettings) -> Bool {
        a.name == b.name && a.mode == b.mode && a.handshake == b.handshake && a.maxConnections == b.maxConnections
            && a.timeoutNanoseconds == b.timeoutNanoseconds && a.keepAlive == b.keepAlive
            && a.bindAddresses == b.bindAddresses
            && a.targets.map(\.target) == b.targets.map(\.target)
            && a.keys.count == b.keys.count
            && zip(a.keys, b.keys).allSatisfy { $0.isSameKey(as: $1) }
    }

    /// Closes the listeners of retired pipes once every running loop has dropped them.
    private func collectRetiredPipes(loops: [EventLoop]) {
        let (pipes, version) = context.pipes
        guard pipes.contains(where: \.isRetired) else { return }
        guard loops.allSatisfy({ $0.syncedVersion >= version || $0.hasFinished }) else { return }
        reconfiguration.withLock { _ in
            let (latest, latestVersion) = context.pipes
            guard latestVersion == version else { return }
            for pipe in latest where pipe.isRetired { pipe.closeListener() }
            context.publish(pipes: latest.filter { !$0.isRetired })
        }
    }

    // MARK: - Running

    /// Starts the event loops and serves until SIGTERM/SIGINT (or `requestStop()`); then stops
    /// accepting, waits for open connections to finish (a second SIGTERM/SIGINT, or the drain
    /// timeout, ends the wait at once), removes Unix-socket source files, and returns.
    /// SIGHUP runs `reloadHandler`.
    ///
    /// SIGTERM, SIGINT and SIGHUP are blocked in the calling thread (and so in every thread it
    /// starts) and read from a signalfd; SIGPIPE is ignored. Call it once, from the main thread
    /// before any other thread exists, so that no thread is left where a process-wide signal
    /// could take its default action.
    public func run() throws(ProxyError) {
        guard !hasRun.exchange(true, ordering: .relaxed) else { throw .invalidConfiguration("run() called twice") }
        TerminationSignals.ignoreBrokenPipe()
        TerminationSignals.blockInCallingThread()
        defer { TerminationSignals.unblockInCallingThread() }
        options.log.start()
        defer { options.log.stop() }

        let signals: SignalReader
        let waiter: Epoll
        do {
            signals = try TerminationSignals.makeReader()
            waiter = try Epoll(maximumEvents: 4)
            try waiter.add(signals.descriptor, events: .readable, token: 1)
            try waiter.add(controlNotifier.descriptor, events: .readable, token: 2)
        } catch {
            throw .system(error)
        }
        defer {
            for pipe in context.pipes.list {
                // Checked while the listener is open, so our inode number cannot have been reused.
                Proxy.removeSourceFile(of: pipe)
                pipe.closeListener()
            }
        }

        // -D: targets that did not resolve at start are retried until they do; a stop request ends the wait.
        if !waitForUnresolvedTargets(waiter: waiter, signals: signals) { return }

        let initialPipes = context.pipes.list
        let limit = initialPipes.reduce(0) { $0 + 2 * $1.settings.maxConnections }
        if let fileLimit = SystemLimits.openFileLimit, !initialPipes.contains(where: { $0.settings.maxConnections == 0 }),
           limit + 16 > fileLimit {
            options.log.log(.warning, "open file limit \(fileLimit) is too low for \(limit / 2) connections (each uses two descriptors)")
        }

        var helpers: [(thread: SystemThread, stop: () -> Void)] = []
        var loopThreads: [SystemThread] = []
        var loops: [EventLoop] = []
        do {
            for index in 0..<options.eventLoopCount {
                loops.append(try EventLoop(context: context, name: "loop \(index)", index: index, loopCount: options.eventLoopCount))
            }
            context.register(loops: loops)
            if let pool = context.keyPairPool {
                helpers.append((try SystemThread(name: "spiped-dhpool") { pool.fill() }, { pool.stop() }))
            }
            refresher.replace(with: initialPipes.flatMap { $0.settings.refreshedTargets })
            let refresher = self.refresher
            helpers.append((try SystemThread(name: "spiped-dns") { refresher.run() }, { refresher.stop() }))
            for (index, loop) in loops.enumerated() {
                loopThreads.append(try SystemThread(name: "spiped-loop\(index)") { loop.run() })
            }
        } catch {
            // Could not start everything: stop what did start, then report.
            context.beginStopping()
            for thread in loopThreads { thread.join() }
            for helper in helpers {
                helper.stop()
                helper.thread.join()
            }
            throw .system(error)
        }
        for pipe in initialPipes { logListening(pipe) }
        let notifier = options.serviceNotifier
        var reportedOpen = -1
        func reportStatus() {
            guard let notifier else { return }
            let open = context.openConnectionCount
            guard open != reportedOpen else { return }
            reportedOpen = open
            let pipeCount = context.pipes.list.filter { !$0.isRetired }.count
            notifier.status("\(pipeCount) pipe\(pipeCount == 1 ? "" : "s"), \(open) open connection\(open == 1 ? "" : "s")")
        }
        notifier?.ready(status: "\(initialPipes.count) pipe\(initialPipes.count == 1 ? "" : "s") listening")

        // Serve: signals, reload requests, and the clean-up of retired pipes.
        var stopping = false
        while !stopping {
            var reload = false
            do {
                try waiter.wait(timeoutMilliseconds: 1000) { event in
                    if event.token == 1 {
                        while let signal = signals.next() {
                            if signal == SIGHUP { reload = true } else { stopping = true }
                        }
                    } else if event.token == 2 {
                        controlNotifier.waitAndReset()
                        if context.isStopping { stopping = true }
                    }
                }
            } catch {
                stopping = true
            }
            if reloadRequested.exchange(false, ordering: .acquiringAndReleasing) { reload = true }
            if reload && !stopping, let reloadHandler {
                notifier?.reloading()
                reloadHandler(self)
                notifier?.ready()
                reportedOpen = -1
            }
            collectRetiredPipes(loops: loops)
            reportStatus()
        }

        // Drain: stop listening now, so new clients are refused at once instead of waiting in
        // the backlog until we exit (shutdown keeps the descriptor valid for the loops).
        let open = context.openConnectionCount
        options.log.log(.notice, "stopping: no new connections; draining \(open) open connection\(open == 1 ? "" : "s")")
        notifier?.stopping(status: "draining \(open) open connection\(open == 1 ? "" : "s")")
        for pipe in context.pipes.list { pipe.settings.metrics?.setListening(false) }
        context.beginStopping()
        for pipe in context.pipes.list { _ = pipe.listener.shutdownResult(.both) }
        let drainDeadline = options.drainTimeoutSeconds.map { MonotonicClock.nanoseconds &+ UInt64(max($0, 0) * 1e9) }
        var abandoned = false
        while context.finishedLoops < loops.count {
            var timeout: Int32 = 1000
            if let drainDeadline {
                let now = MonotonicClock.nanoseconds
                if now >= drainDeadline {
                    let left = context.openConnectionCount
                    options.log.log(.notice, "drain timeout reached; exiting with \(left) connection\(left == 1 ? "" : "s") open")
                    abandoned = true
                    break
                }
                timeout = Int32(clamping: min(1000, (drainDeadline - now) / 1_000_000 + 1))
            }
            var again = false
            _ = try? waiter.wait(timeoutMilliseconds: timeout) { event in
                if event.token == 1 {
                    while let signal = signals.next() { if signal != SIGHUP { again = true } }
                } else if event.token == 2 {
                    controlNotifier.waitAndReset()
                }
            }
            if again {
                let left = context.openConnectionCount
                options.log.log(.notice, "second stop signal: exiting now with \(left) connection\(left == 1 ? "" : "s") open")
                abandoned = true
                break
            }
        }
        if abandoned { return }
        for thread in loopThreads { thread.join() }
        for helper in helpers {
            helper.stop()
            helper.thread.join()
        }
        if let failure = loops.compactMap(\.failure).first { throw failure }
    }

    /// With `-D`: waits until every target resolved; false if a stop came first.
    private func waitForUnresolvedTargets(waiter: Epoll, signals: SignalReader) -> Bool {
        let unresolved = context.pipes.list.flatMap { $0.settings.targets }.filter { $0.current.isEmpty }
        guard !unresolved.isEmpty else { return true }
        var resolvers: [SystemThread] = []
        for book in unresolved {
            if let thread = try? SystemThread(name: "spiped-dns", { _ = book.waitUntilResolved() }) { resolvers.append(thread) }
        }
        var stopEarly = false
        while !stopEarly {
            if unresolved.allSatisfy({ !$0.current.isEmpty }) { break }
            _ = try? waiter.wait(timeoutMilliseconds: 200) { event in
                if event.token == 1 {
                    while let signal = signals.next() { if signal != SIGHUP { stopEarly = true } }
                } else if event.token == 2 {
                    controlNotifier.waitAndReset()
                    if context.isStopping { stopEarly = true }
                }
            }
        }
        if stopEarly { for book in unresolved { book.stop() } }
        for thread in resolvers { thread.join() }
        return !stopEarly
    }

    /// Asks `run()` to stop accepting, let open connections finish, and return. Any thread.
    public func requestStop() {
        context.beginStopping()
    }

    /// Connections open right now across all pipes (for tests and monitoring).
    public var openConnectionCount: Int { context.openConnectionCount }

    /// The names and bound addresses of the pipes accepting now (for tests and logs).
    public var listeningPipes: [(name: String, address: SocketAddress)] {
        context.pipes.list.filter { !$0.isRetired }.map { ($0.name, $0.listeningAddress) }
    }
}
