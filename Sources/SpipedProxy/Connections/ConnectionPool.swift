import SpipedProtocol
import SpipedSystem

/// One loop's pooled connections for one encrypt pipe (`--pool N`).
struct LoopPool {
    /// Connected and handshaken, oldest first, waiting for a client.
    var ready: [Connection] = []
    /// Being connected or handshaken for the pool.
    var pending = 0
    /// After a failed attempt, no new one before this time (monotonic nanoseconds).
    var retryAt: UInt64 = 0
}

/// Pre-established connections (`--pool N` on encrypt pipes): each loop keeps its share of a
/// pipe's N connections to the target connected and handshaken ahead of time, so a new client
/// takes one at once instead of waiting for a TCP connect and a handshake across the network.
///
/// - A pooled connection serves exactly one client and is never reused: forward secrecy and
///   the server's per-connection state stay as without a pool. A replacement is started as
///   soon as one is taken.
/// - Data the server sends before any client (a MariaDB greeting) stays in the socket and is
///   delivered to the client that takes the connection.
/// - A pooled connection the far side closes or resets is dropped before any client gets it; one
///   unused for `--pool-max-age` is closed and replaced (servers close idle connections on their
///   own schedule: MariaDB's `connect_timeout` is 10 s, so the default age is 8 s).
/// - If making pooled connections fails (target down, wrong key), the loop waits a second before
///   trying again; clients meanwhile connect on demand.
/// - Pooled connections hold no `-n` slot until a client takes one.
extension EventLoop {
    /// Pause after a pooled connection failed to set up.
    static let poolRetryNanoseconds: UInt64 = 1_000_000_000

    /// This loop's share of a pool of `size` spread over `loopCount` loops.
    func poolShare(of size: Int) -> Int {
        size / loopCount + (index < size % loopCount ? 1 : 0)
    }

    /// A client was accepted on `pipe`: hands it a pooled connection if one is ready (true), or
    /// leaves it to the normal path (false).
    func adoptFromPool(client fd: FileDescriptor, peerDescription: String, pipe: Pipe, settings: PipeSettings) -> Bool {
        guard settings.poolSize > 0 else { return false }
        var pool = pools[pipe.identifier] ?? LoopPool()
        defer { pools[pipe.identifier] = pool; refillPool(of: pipe) }
        while !pool.ready.isEmpty {
            let connection = pool.ready.removeFirst()
            _ = pipe.changePooledCount(by: -1)
            guard connection.phase == .pooled, connection.settings === settings, !connection.encryptedPeerClosed else {
                // Made with settings a reload replaced, or the server hung up: not for a client.
                pools[pipe.identifier] = pool
                discardPooled(connection)
                pool = pools[pipe.identifier] ?? pool
                continue
            }
            connection.isPoolMember = false
            connection.peerDescription = peerDescription
            connection.plaintext = fd
            connection.plaintextReadable = true
            connection.plaintextWritable = true
            connection.phase = .piping
            settings.metrics?.poolHit()
            settings.metrics?.setPoolSize(pipe.changePooledCount(by: 0))
            settings.metrics?.connectionOpened()
            do {
                try watch(fd, of: connection, encryptedSide: false)
            } catch {
                close(connection, end: .failed(.system(error)))
                return true
            }
            advance(connection)
            return true
        }
        settings.metrics?.poolMissed()
        return false
    }

    /// A pooled connection finished its handshake: it waits for a client.
    func poolConnectionReady(_ connection: Connection) {
        guard let pipe = connection.pipe else { return }
        connection.phase = .pooled
        connection.pooledAt = MonotonicClock.nanoseconds
        pools[pipe.identifier, default: LoopPool()].pending -= 1
        pools[pipe.identifier, default: LoopPool()].ready.append(connection)
        connection.settings.metrics?.setPoolSize(pipe.changePooledCount(by: 1))
    }

    /// A pooled connection's readiness changed: the server closing or resetting it is the only
    /// thing to act on (its data waits in the socket for the client).
    func keepPooled(_ connection: Connection) {
        if connection.encryptedPeerClosed { discardPooled(connection) }
    }

    /// Closes a pooled connection no client will get; the pool makes another.
    func discardPooled(_ connection: Connection) {
        connection.settings.metrics?.poolConnectionDiscarded()
        close(connection, end: nil)
    }

    /// Bookkeeping when a pool member closes (from `close`).
    func poolMemberClosed(_ connection: Connection, wasReady: Bool, failed: Bool) {
        guard let pipe = connection.pipe else { return }
        var pool = pools[pipe.identifier] ?? LoopPool()
        if wasReady {
            if let position = pool.ready.firstIndex(where: { $0 === connection }) {
                pool.ready.remove(at: position)
                connection.settings.metrics?.setPoolSize(pipe.changePooledCount(by: -1))
            }
        } else {
            pool.pending = max(0, pool.pending - 1)
            if failed { pool.retryAt = MonotonicClock.nanoseconds &+ Self.poolRetryNanoseconds }
        }
        pools[pipe.identifier] = pool
    }

    /// Starts pooled connections until this loop's share of `pipe`'s pool is ready or pending.
    func refillPool(of pipe: Pipe) {
        let settings = pipe.settings
        guard !context.isStopping, !pipe.isRetired, settings.mode == .encrypt, settings.poolSize > 0 else { return }
        let share = poolShare(of: settings.poolSize)
        let now = MonotonicClock.nanoseconds
        var pool = pools[pipe.identifier] ?? LoopPool()
        guard now >= pool.retryAt else { return }
        while pool.ready.count + pool.pending < share {
            pool.pending += 1
            pools[pipe.identifier] = pool
            startPooledConnection(pipe: pipe, settings: settings)
            pool = pools[pipe.identifier] ?? pool
            if pool.retryAt > now { break }   // it failed at once
        }
        pools[pipe.identifier] = pool
    }

    /// Connects a new pool member to the pipe's target; the handshake follows as for a client.
    private func startPooledConnection(pipe: Pipe, settings: PipeSettings) {
        let connection = makeConnection(pipe: pipe, settings: settings, peerDescription: "pool", phase: .connectingTarget)
        connection.isPoolMember = true
        connection.targetBook = settings.targets[0]
        advance(connection)
    }

    /// After a reload: pools of pipes no longer served, or made with replaced settings, are
    /// dropped; every served pipe's pool is topped up.
    func refreshPools() {
        for (identifier, pool) in pools {
            let served = listeners[identifier]?.pipe
            for connection in pool.ready where served == nil || connection.settings !== served!.settings {
                discardPooled(connection)
            }
            if served == nil && (pools[identifier]?.pending ?? 0) == 0 { pools[identifier] = nil }
        }
        for (_, entry) in listeners { refillPool(of: entry.pipe) }
    }

    /// Closes every pooled connection (the engine is stopping: they would never end).
    func discardAllPools() {
        for (_, pool) in pools {
            for connection in pool.ready { close(connection, end: nil) }
        }
        for connection in connections.compactMap({ $0 }) where connection.isPoolMember { close(connection, end: nil) }
        pools.removeAll()
    }

    /// Replaces pooled connections older than `--pool-max-age` and retries failed refills.
    func maintainPools(now: UInt64) {
        guard !pools.isEmpty else { return }
        for (identifier, pool) in pools {
            for connection in pool.ready where now &- connection.pooledAt >= connection.settings.poolMaxAgeNanoseconds {
                discardPooled(connection)
            }
            if let pipe = listeners[identifier]?.pipe, (pools[identifier]?.retryAt ?? 0) <= now { refillPool(of: pipe) }
        }
    }

    /// The next time `maintainPools` has work: the oldest ready connection's age limit, or the
    /// end of a retry pause of a pool below its share.
    func nextPoolEvent() -> UInt64? {
        var earliest: UInt64?
        for (identifier, pool) in pools {
            if let oldest = pool.ready.first {
                let limit = oldest.pooledAt &+ oldest.settings.poolMaxAgeNanoseconds
                earliest = min(earliest ?? limit, limit)
            }
            if let pipe = listeners[identifier]?.pipe, pool.retryAt > 0,
               pool.ready.count + pool.pending < poolShare(of: pipe.settings.poolSize) {
                earliest = min(earliest ?? pool.retryAt, pool.retryAt)
            }
        }
        return earliest
    }
}
