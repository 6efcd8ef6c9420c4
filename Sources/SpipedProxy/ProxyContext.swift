import SpipedProtocol
import SpipedSystem
import Synchronization

/// State shared by all event loops of one proxy: configuration, the listening socket, the
/// global connection count for `-n`, the target addresses and the key-pair pool.
/// Everything mutable in it is atomic or behind a mutex.
final class ProxyContext: Sendable {
    let configuration: ProxyConfiguration
    /// The listening socket (`nil` for `spipe`, which has no listener).
    let listener: FileDescriptor?
    let targets: TargetAddressBook
    /// Addresses for `-b`, resolved once.
    let bindAddresses: [SocketAddress]
    let keyPairPool: DHKeyPairPool?
    /// `-o` in nanoseconds.
    let timeoutNanoseconds: UInt64
    /// Signalled when stopping begins, to wake the thread waiting in `Proxy.run()`.
    let stopNotifier: EventNotifier?

    /// Connections open across all loops (plus accepts in progress).
    private let openConnections = Atomic<Int>(0)
    /// Set once when the proxy should stop accepting and wind down.
    private let stopRequested = Atomic<Bool>(false)
    /// The "connection limit reached" warning was logged for the current episode.
    private let limitWarningLogged = Atomic<Bool>(false)
    /// The "out of file descriptors" warning was logged for the current episode.
    private let acceptFailureLogged = Atomic<Bool>(false)
    /// The event loops, set once before any of them starts (used to wake them all).
    private let loops = Mutex<[EventLoop]>([])

    init(configuration: ProxyConfiguration, listener: FileDescriptor?, targets: TargetAddressBook,
         bindAddresses: [SocketAddress], keyPairPool: DHKeyPairPool?, stopNotifier: EventNotifier?) {
        self.stopNotifier = stopNotifier
        self.configuration = configuration
        self.listener = listener
        self.targets = targets
        self.bindAddresses = bindAddresses
        self.keyPairPool = keyPairPool
        timeoutNanoseconds = UInt64(max(configuration.timeoutSeconds, 0.001) * 1_000_000_000)
    }

    func register(loops newLoops: [EventLoop]) {
        loops.withLock { $0 = newLoops }
    }

    func log(_ level: ProxyLogLevel, _ message: String) {
        configuration.log(level, message)
    }

    var isStopping: Bool { stopRequested.load(ordering: .acquiring) }

    /// Asks every loop to stop accepting and to finish once its connections are done.
    func beginStopping() {
        stopRequested.store(true, ordering: .releasing)
        wakeAllLoops()
        stopNotifier?.signal()
    }

    func wakeAllLoops() {
        for loop in loops.withLock({ $0 }) { loop.wake() }
    }

    /// Reserves room for one more connection under `-n`; false at the limit.
    func reserveConnection() -> Bool {
        let limit = configuration.maxConnections
        if limit <= 0 {
            openConnections.add(1, ordering: .relaxed)
            return true
        }
        var current = openConnections.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = openConnections.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives back a reservation (connection closed or accept failed). When this frees room
    /// under the limit, wakes the loops so paused listeners resume.
    func releaseConnection() {
        let previous = openConnections.subtract(1, ordering: .relaxed).oldValue
        let limit = configuration.maxConnections
        if limit > 0 && previous == limit {
            limitWarningLogged.store(false, ordering: .relaxed)
            wakeAllLoops()
        }
    }

    /// Whether a new connection would fit under `-n` right now.
    var hasRoomForConnection: Bool {
        let limit = configuration.maxConnections
        return limit <= 0 || openConnections.load(ordering: .relaxed) < limit
    }

    /// Connections open across all loops.
    var openConnectionCount: Int { openConnections.load(ordering: .relaxed) }

    /// Logs the limit warning once per episode.
    func warnLimitReached() {
        if !limitWarningLogged.exchange(true, ordering: .relaxed) {
            log(.warning, "connection limit (\(configuration.maxConnections)) reached; not accepting new connections until one closes")
        }
    }

    /// Logs an accept failure once per episode (until an accept succeeds again).
    func warnAcceptFailure(_ error: Errno) {
        if !acceptFailureLogged.exchange(true, ordering: .relaxed) {
            log(.warning, "accept: \(error); pausing new connections briefly")
        }
    }

    func acceptSucceeded() {
        if acceptFailureLogged.load(ordering: .relaxed) { acceptFailureLogged.store(false, ordering: .relaxed) }
    }
}
