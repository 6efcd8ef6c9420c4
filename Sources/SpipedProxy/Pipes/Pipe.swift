import SpipedSystem
import Synchronization

/// One pipe of the engine: a listening socket plus the settings snapshot that each new
/// connection takes when it is accepted. A reload swaps the snapshot (`replaceSettings`) or
/// retires the pipe; neither touches connections already open, which hold their own snapshot.
///
/// The event loops share the listener (each registers it with `EPOLLEXCLUSIVE`) and the `-n`
/// count, so everything mutable here is atomic or behind a mutex.
final class Pipe: Sendable {
    /// Unique within the engine; part of the listener's epoll token.
    let identifier: Int
    /// The source as configured (a pipe is identified by its source across reloads).
    let source: AddressSpec
    /// The listening socket.
    let listener: FileDescriptor
    /// The address actually bound (with the kernel's port for port 0).
    let listeningAddress: SocketAddress
    /// The Unix-socket file this pipe created, removed when the pipe ends (if still ours).
    let unixSocketFile: UnixSocketFile?

    private let currentSettings: Mutex<PipeSettings>
    /// Connections open on this pipe (plus accepts in progress), for `-n`.
    private let openConnections = Atomic<Int>(0)
    /// Pooled connections ready across all loops (the `spiped_pool_connections` gauge).
    private let pooledReady = Atomic<Int>(0)
    /// Set when a reload removed the pipe: the loops stop accepting on it.
    private let retired = Atomic<Bool>(false)
    /// The listener has been closed (after every loop dropped it).
    private let listenerClosed = Atomic<Bool>(false)
    /// The "accept failed" warning was logged for the current episode.
    private let acceptFailureLogged = Atomic<Bool>(false)

    init(identifier: Int, source: AddressSpec, listener: FileDescriptor, listeningAddress: SocketAddress,
         unixSocketFile: UnixSocketFile?, settings: PipeSettings) {
        self.identifier = identifier
        self.source = source
        self.listener = listener
        self.listeningAddress = listeningAddress
        self.unixSocketFile = unixSocketFile
        currentSettings = Mutex(settings)
    }

    /// The settings a connection accepted now takes.
    var settings: PipeSettings { currentSettings.withLock { $0 } }

    /// The pipe's current name.
    var name: String { settings.name }

    /// Installs new settings for connections accepted from now on.
    func replaceSettings(_ settings: PipeSettings) {
        currentSettings.withLock { $0 = settings }
    }

    var isRetired: Bool { retired.load(ordering: .acquiring) }

    /// Stops accepting on this pipe for good (a reload removed it). The listening socket is
    /// shut down at once, so new clients are refused instead of waiting in its backlog.
    func retire() {
        retired.store(true, ordering: .releasing)
        _ = listener.shutdownResult(.both)
    }

    /// Closes the listening socket once no loop watches it any more (idempotent).
    func closeListener() {
        if !listenerClosed.exchange(true, ordering: .acquiringAndReleasing) { listener.close() }
    }

    /// Adds `change` to the count of ready pooled connections; returns the new count.
    func changePooledCount(by change: Int) -> Int {
        pooledReady.add(change, ordering: .relaxed).newValue
    }

    // MARK: - Connection limit

    /// Reserves room for one more connection under `limit`; false at the limit.
    func reserveConnection(limit: Int) -> Bool {
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

    /// Counts a connection admitted in place of one just evicted (may pass the limit briefly
    /// while another loop admits one too; bounded by the number of loops).
    func forceReserveConnection() {
        openConnections.add(1, ordering: .relaxed)
    }

    /// Gives back a reservation. Returns true when this made room under `limit` (so paused
    /// loops should resume).
    func releaseConnection(limit: Int) -> Bool {
        let previous = openConnections.subtract(1, ordering: .relaxed).oldValue
        return limit > 0 && previous >= limit
    }

    /// Whether a new connection would fit under `limit` right now.
    func hasRoom(limit: Int) -> Bool {
        limit <= 0 || openConnections.load(ordering: .relaxed) < limit
    }

    /// Connections open on this pipe.
    var openConnectionCount: Int { openConnections.load(ordering: .relaxed) }

    /// True the first time per episode (until an accept succeeds) that accept fails.
    func shouldWarnAcceptFailure() -> Bool { !acceptFailureLogged.exchange(true, ordering: .relaxed) }

    func acceptSucceeded() {
        if acceptFailureLogged.load(ordering: .relaxed) { acceptFailureLogged.store(false, ordering: .relaxed) }
    }
}
