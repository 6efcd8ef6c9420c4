import Glibc
import SpipedProtocol
import SpipedSystem
import Synchronization

/// The spiped daemon's engine: accepts on the source, connects each connection to the
/// target, and encrypts or decrypts between them, on one event loop per CPU.
public final class Proxy: @unchecked Sendable {
    private let configuration: ProxyConfiguration
    private let listener: FileDescriptor
    /// The socket file to remove at exit (if it is still ours) when the source is a Unix socket.
    private let unixSocketFile: UnixSocketFile?
    private let targets: TargetAddressBook
    private let targetResolved: Bool
    private let bindAddresses: [SocketAddress]
    private let stopNotifier: EventNotifier
    private let hasRun = Atomic<Bool>(false)

    /// The address the proxy listens on (with the port the kernel chose, if port 0 was given).
    public let listeningAddress: SocketAddress

    /// Resolves source and target and binds+listens on the source (so configuration errors
    /// surface before the caller daemonizes). Starts no threads.
    ///
    /// With `waitForDNS`, a target that does not resolve yet is retried in `run()`.
    public init(configuration: ProxyConfiguration) throws(ProxyError) {
        guard configuration.eventLoopCount >= 1 else { throw .invalidConfiguration("event loop count must be at least 1") }
        guard configuration.maxConnections >= 0 else { throw .invalidConfiguration("connection limit must not be negative") }
        guard configuration.timeoutSeconds > 0 else { throw .invalidConfiguration("timeout must be positive") }
        self.configuration = configuration
        do {
            stopNotifier = try EventNotifier()
        } catch {
            throw .system(error)
        }

        var initialTargets: [SocketAddress] = []
        do {
            initialTargets = try AddressResolver.resolve(configuration.target)
        } catch {
            if !configuration.waitForDNS { throw .addressResolutionFailed(error) }
        }
        targetResolved = !initialTargets.isEmpty
        do {
            targets = try TargetAddressBook(target: configuration.target, initial: initialTargets, log: configuration.log)
        } catch {
            throw .system(error)
        }
        if let bind = configuration.bindAddress {
            do {
                bindAddresses = try AddressResolver.resolve(bind, passive: true)
            } catch {
                throw .addressResolutionFailed(error)
            }
        } else {
            bindAddresses = []
        }

        let sourceAddresses: [SocketAddress]
        do {
            sourceAddresses = try AddressResolver.resolve(configuration.source, passive: true)
        } catch {
            throw .addressResolutionFailed(error)
        }
        let source = sourceAddresses[0]
        (listener, unixSocketFile) = try Proxy.listen(on: source, written: configuration.source.displayText)
        do {
            listeningAddress = try listener.localAddress()
        } catch {
            listener.close()
            throw .system(error)
        }
    }

    deinit {
        if !hasRun.load(ordering: .relaxed) { listener.close() }
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

    /// Starts the event loops and serves until SIGTERM/SIGINT (or `requestStop()`); then stops
    /// accepting, waits for open connections to finish, removes a Unix-socket source file, returns.
    ///
    /// SIGTERM and SIGINT are blocked in the calling thread (and so in every thread it starts)
    /// and read from a signalfd; SIGPIPE is ignored. Call it once, from the main thread before
    /// any other thread exists, so that no thread is left where a process-wide SIGTERM could
    /// take its default action.
    public func run() throws(ProxyError) {
        guard !hasRun.exchange(true, ordering: .relaxed) else { throw .invalidConfiguration("run() called twice") }
        defer {
            // Checked while the listener is open, so our inode number cannot have been reused.
            unixSocketFile?.removeIfStillOurs()
            listener.close()
        }
        TerminationSignals.ignoreBrokenPipe()
        TerminationSignals.blockInCallingThread()
        defer { TerminationSignals.unblockInCallingThread() }

        let signals: SignalReader
        let waiter: Epoll
        do {
            signals = try TerminationSignals.makeReader()
            waiter = try Epoll(maximumEvents: 4)
            try waiter.add(signals.descriptor, events: .readable, token: 1)
            try waiter.add(stopNotifier.descriptor, events: .readable, token: 2)
        } catch {
            throw .system(error)
        }

        if !targetResolved {
            // -D: keep trying until the name resolves; a stop request ends the wait.
            let resolver: SystemThread
            do {
                resolver = try SystemThread(name: "spiped-dns") { [targets] in _ = targets.waitUntilResolved() }
            } catch {
                throw .system(error)
            }
            var stopEarly = false
            while !stopEarly {
                if !targets.current.isEmpty { break }
                _ = try? waiter.wait(timeoutMilliseconds: 200) { event in
                    if event.token == 1 || event.token == 2 { stopEarly = true }
                }
            }
            if stopEarly {
                targets.stop()
                resolver.join()
                return
            }
            resolver.join()
        }

        // Each connection holds two descriptors; warn when -n cannot be reached (EMFILE is survived anyway).
        if let fileLimit = SystemLimits.openFileLimit, configuration.maxConnections > 0,
           2 * configuration.maxConnections + 16 > fileLimit {
            configuration.log(.warning, "open file limit \(fileLimit) is too low for \(configuration.maxConnections) connections (each uses two descriptors)")
        }

        var helpers: [(thread: SystemThread, stop: () -> Void)] = []
        var loopThreads: [SystemThread] = []
        var loops: [EventLoop] = []
        let pool: DHKeyPairPool?
        do {
            pool = configuration.handshake.fast ? nil : try DHKeyPairPool(capacity: 4 * configuration.eventLoopCount,
                                                                                   backend: configuration.backend)
        } catch {
            throw .system(error)
        }
        let context = ProxyContext(configuration: configuration, listener: listener, targets: targets,
                                   bindAddresses: bindAddresses, keyPairPool: pool, stopNotifier: stopNotifier)
        currentContext.withLock { $0 = context }
        do {
            for index in 0..<configuration.eventLoopCount {
                loops.append(try EventLoop(context: context, name: "\(configuration.mode == .encrypt ? "encrypt" : "decrypt") loop \(index)"))
            }
            context.register(loops: loops)
            if let pool {
                helpers.append((try SystemThread(name: "spiped-dhpool") { pool.fill() }, { pool.stop() }))
            }
            if let interval = configuration.resolveIntervalSeconds, AddressResolver.needsPeriodicResolution(configuration.target) {
                let targets = self.targets
                helpers.append((try SystemThread(name: "spiped-dns") { targets.refreshPeriodically(interval: interval) }, { targets.stop() }))
            }
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

        var stopping = false
        while !stopping {
            do {
                try waiter.wait(timeoutMilliseconds: -1) { event in
                    if event.token == 1, let signal = signals.next() {
                        configuration.log(.info, "received signal \(signal); no new connections, exiting once open connections close")
                        stopping = true
                    } else if event.token == 2 {
                        stopNotifier.waitAndReset()
                        stopping = true
                    }
                }
            } catch {
                stopping = true
            }
        }
        context.beginStopping()
        // Stop listening now, so new clients are refused at once instead of waiting in the
        // backlog until we exit (shutdown keeps the descriptor valid for the loops).
        _ = listener.shutdownResult(.both)
        for thread in loopThreads { thread.join() }
        for helper in helpers {
            helper.stop()
            helper.thread.join()
        }
        if let failure = loops.compactMap(\.failure).first { throw failure }
    }

    /// Asks `run()` to stop accepting, let open connections finish, and return. Any thread.
    public func requestStop() {
        stopNotifier.signal()
    }

    /// Connections open right now (for tests and monitoring); 0 before `run()`.
    public var openConnectionCount: Int {
        currentContext.withLock { $0?.openConnectionCount ?? 0 }
    }

    private let currentContext = Mutex<ProxyContext?>(nil)
}
