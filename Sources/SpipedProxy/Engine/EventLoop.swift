import SpipedProtocol
import SpipedSystem
import Synchronization

/// One event loop: a thread with its own epoll instance and its own connections, serving
/// every pipe of the engine.
///
/// **Edge-triggered epoll.** Each connection socket is registered once, for reading and
/// writing, with `EPOLLET`; the loop remembers readiness in the connection and clears it on
/// `EAGAIN` (or a short read). Backpressure is then simply *not reading* a side while the other
/// side has unwritten output; the kernel buffers fill and TCP flow control slows the sender.
///
/// **Shared listeners with `EPOLLEXCLUSIVE`.** Every loop adds every pipe's listening socket
/// (level-triggered, exclusive) and accepts for itself, so the kernel hands a new connection to
/// one idle loop. A loop removes a listener from its own epoll to pause (at `-n`, after
/// `EMFILE`, when stopping, or when a reload retired the pipe).
///
/// **Setup queues.** Connections in setup (connecting, handshaking) are queued in accept order,
/// one FIFO per distinct `-o` value, so each FIFO is in deadline order: a FIFO replaces a heap,
/// and `epoll_wait`'s timeout is the earliest head. Entries of connections that finished setup
/// are skipped and compacted away. The same queues give the oldest unauthenticated connection
/// to evict at the connection limit.
///
/// The loop object is used by its own thread only, except `wake()`. Connection setup lives in
/// `ConnectionSetup.swift`, the data pump in `DataPump.swift`.
final class EventLoop: @unchecked Sendable {
    /// Packets `outputBuffer` holds. Large batches (about 256 KB per read and write) cut the
    /// syscalls and wake-ups per MB; the buffers are only touched once traffic flows.
    static let outputPacketCount = 256
    /// Bytes of plaintext read per call: one payload fewer than `outputBuffer` holds packets,
    /// so their sealed form fits.
    static let plaintextReadByteCount = (outputPacketCount - 1) * PacketSealer.maximumPayloadByteCount
    /// Bytes of ciphertext read per call (their opened form, plus one packet completed from
    /// earlier bytes, fits `outputBuffer`).
    static let ciphertextReadByteCount = 256 * 1024
    /// The handshake input from the peer: nonce (32) + DH value (256) + its MAC (32).
    static let handshakeInputByteCount = Handshake.handshakeByteCount
    /// Reads per side per turn before other connections get their turn.
    static let readsPerTurn = 4
    /// Accepts per listener wake-up (small, so a burst spreads over the loops).
    static let acceptsPerWakeup = 8
    /// Pause after `EMFILE`/`ENFILE`.
    static let acceptBackoffNanoseconds: UInt64 = 100_000_000

    // Epoll tokens. Bit 63 set: a control token (bit 0 set: the wake-up notifier; clear: a
    // listener, with the pipe identifier in bits 1...62). Bit 63 clear: a connection socket,
    // with its generation in bits 32...62 (31 bits, so it can never reach bit 63), its slot in
    // bits 1...31 and the side (1 = encrypted) in bit 0.
    static let controlTokenBit: UInt64 = 1 << 63
    static let wakeupToken: UInt64 = controlTokenBit | 1
    /// Generations wrap at 2^31 so a connection token never has bit 63 set.
    static let generationMask: UInt32 = 0x7FFF_FFFF

    static func listenerToken(_ pipe: Pipe) -> UInt64 { controlTokenBit | UInt64(pipe.identifier) << 1 }

    let context: EngineContext
    let name: String
    /// This loop's position among the engine's loops, and their number (a pipe's pool is
    /// spread over the loops).
    let index: Int
    let loopCount: Int
    /// Each pipe's pooled connections made by this loop (`ConnectionPool.swift`).
    var pools: [Int: LoopPool] = [:]
    let epoll: Epoll
    private let wakeup: EventNotifier

    var connections: [Connection?] = []
    var generations: [UInt32] = []
    var freeSlots: [Int] = []
    /// Connections owned by this loop.
    var connectionCount = 0

    /// Connections in setup, in accept order, one queue per `-o` value (so each queue is also
    /// in deadline order; see the type's comment).
    /// (An array, not a dictionary keyed by `-o`: looping over it while updating its elements
    /// copies nothing, and an emptied queue keeps its storage for the next connection.)
    var setupQueues: [SetupQueue] = []
    /// Connections that stopped reading only to let others run; served after the next poll.
    var anotherTurn: [Connection] = []

    enum ListenerState { case listening, pausedAtLimit, backingOff(until: UInt64) }
    /// This loop's registration of each pipe's listener, by pipe identifier.
    var listeners: [Int: (pipe: Pipe, state: ListenerState)] = [:]
    /// The pipe-list version the registrations match (read by the control thread to know when
    /// a retired listener is no longer watched by any loop).
    private let syncedPipesVersion = Atomic<Int>(-1)
    private let finished = Atomic<Bool>(false)
    /// The pipe-list version this loop's listener registrations match.
    var syncedVersion: Int { syncedPipesVersion.load(ordering: .acquiring) }
    /// True once `run()` returned.
    var hasFinished: Bool { finished.load(ordering: .acquiring) }
    /// True once this loop dropped its listeners for good (stopping).
    private var stoppedListening = false

    /// Shared by all connections of this loop: what was read, and what it became.
    let inputBuffer: UnsafeMutableRawBufferPointer
    let outputBuffer: UnsafeMutableRawBufferPointer

    /// For `spipe`: called once when a connection ends (nil = finished normally).
    var onConnectionEnd: ((ProxyError?) -> Void)?
    /// A fatal loop error (epoll failed), reported by `run()`.
    private(set) var failure: ProxyError?

    init(context: EngineContext, name: String, index: Int = 0, loopCount: Int = 1) throws(SystemError) {
        self.context = context
        self.name = name
        self.index = index
        self.loopCount = loopCount
        epoll = try Epoll()
        wakeup = try EventNotifier()
        inputBuffer = .allocate(byteCount: max(Self.plaintextReadByteCount, Self.ciphertextReadByteCount), alignment: 16)
        // Room for the sealed form of a full plaintext read, and for the opened form of a
        // full ciphertext read plus one packet completed from earlier bytes.
        outputBuffer = .allocate(byteCount: Self.outputPacketCount * PacketSealer.packetByteCount, alignment: 16)
        try epoll.add(wakeup.descriptor, events: .readable, token: Self.wakeupToken)
    }

    deinit {
        inputBuffer.deallocate()
        outputBuffer.deallocate()
    }

    /// Wakes the loop from any thread (stop requests, reloads, room under `-n`).
    func wake() { wakeup.signal() }

    // MARK: - Running

    /// Serves until the engine stops and this loop's connections are finished (or, without
    /// pipes — `spipe` — until its connections are finished).
    func run() {
        defer {
            finished.store(true, ordering: .releasing)
            context.loopFinished()
        }
        syncListeners()
        while true {
            if connectionCount == 0 && (context.isStopping || !context.hasPipes) { break }
            let timeout = pollTimeout(now: MonotonicClock.nanoseconds)
            do {
                try epoll.wait(timeoutMilliseconds: timeout) { event in handle(event) }
            } catch {
                failure = .system(error)
                context.log.log(.error, "\(name): \(error)")
                context.beginStopping()
                closeAllConnections()
                break
            }
            serveConnectionsWaitingForTurn()
            let now = MonotonicClock.nanoseconds
            expireDeadlines(now: now)
            maintainPools(now: now)
            resumeListenersAfterBackoff(now: now)
        }
        dropAllListeners()
    }

    private func pollTimeout(now: UInt64) -> Int32 {
        if !anotherTurn.isEmpty { return 0 }
        var earliest: UInt64?
        for index in setupQueues.indices {
            // Drop entries of connections that finished setup, so they cause no wake-up.
            setupQueues[index].dropFinishedHead(of: self)
            if let head = setupQueues[index].head, let connection = connectionInSetup(head) {
                earliest = min(earliest ?? connection.deadline, connection.deadline)
            }
        }
        for (_, entry) in listeners {
            if case .backingOff(let until) = entry.state { earliest = min(earliest ?? until, until) }
        }
        if let poolEvent = nextPoolEvent() { earliest = min(earliest ?? poolEvent, poolEvent) }
        guard let earliest else { return -1 }
        if earliest <= now { return 0 }
        // Round up so the deadline has passed when the wait returns.
        let milliseconds = (earliest - now + 999_999) / 1_000_000
        return Int32(clamping: milliseconds)
    }

    private func handle(_ event: EpollEvent) {
        if event.token & Self.controlTokenBit != 0 {
            if event.token == Self.wakeupToken {
                wakeup.waitAndReset()
                syncListeners()
            } else {
                let identifier = Int(truncatingIfNeeded: (event.token & ~Self.controlTokenBit) >> 1)
                acceptConnections(pipeIdentifier: identifier)
            }
            return
        }
        let slot = Int(truncatingIfNeeded: (event.token & 0xFFFF_FFFF) >> 1)
        let generation = UInt32(truncatingIfNeeded: event.token >> 32)
        guard slot < connections.count, let connection = connections[slot], connection.generation == generation else { return }
        let isEncryptedSide = event.token & 1 == 1
        let events = event.events
        let readable = !events.isDisjoint(with: [.readable, .peerClosedWriting, .hangUp, .error])
        let writable = !events.isDisjoint(with: [.writable, .hangUp, .error])
        let peerClosed = !events.isDisjoint(with: [.peerClosedWriting, .hangUp, .error])
        if isEncryptedSide {
            if readable { connection.encryptedReadable = true }
            if writable { connection.encryptedWritable = true }
            if peerClosed { connection.encryptedPeerClosed = true }
        } else {
            if readable { connection.plaintextReadable = true }
            if writable { connection.plaintextWritable = true }
            if peerClosed { connection.plaintextPeerClosed = true }
        }
        advance(connection)
    }

    func token(_ connection: Connection, encryptedSide: Bool) -> UInt64 {
        Self.connectionToken(generation: connection.generation, slot: connection.slot, encryptedSide: encryptedSide)
    }

    /// A connection socket's token: the generation (31 bits), slot and side; bit 63 stays clear
    /// whatever the generation, so it can never equal a listener's or the wake-up token.
    static func connectionToken(generation: UInt32, slot: Int, encryptedSide: Bool) -> UInt64 {
        UInt64(generation & generationMask) << 32 | UInt64(slot) << 1 | (encryptedSide ? 1 : 0)
    }

    /// Watches a connection's socket for both directions, edge-triggered.
    func watch(_ fd: FileDescriptor, of connection: Connection, encryptedSide: Bool) throws(SystemError) {
        try epoll.add(fd, events: [.readable, .writable, .peerClosedWriting, .edgeTriggered],
                      token: token(connection, encryptedSide: encryptedSide))
    }

    private func serveConnectionsWaitingForTurn() {
        guard !anotherTurn.isEmpty else { return }
        let waiting = anotherTurn
        anotherTurn.removeAll(keepingCapacity: true)
        for connection in waiting {
            connection.isQueuedForAnotherTurn = false
            if connection.phase != .closed { advance(connection) }
        }
    }

    func queueForAnotherTurn(_ connection: Connection) {
        if !connection.isQueuedForAnotherTurn {
            connection.isQueuedForAnotherTurn = true
            anotherTurn.append(connection)
        }
    }

    // MARK: - Setup queues and deadlines

    /// The entry's connection if it still exists and is connecting or handshaking.
    func connectionInSetup(_ entry: SetupQueue.Entry) -> Connection? {
        guard entry.slot < connections.count, let connection = connections[entry.slot], connection.generation == entry.generation,
              connection.phase == .connectingTarget || connection.phase == .handshaking else { return nil }
        return connection
    }

    func enqueueForSetup(_ connection: Connection) {
        let timeout = connection.settings.timeoutNanoseconds
        if let index = setupQueues.firstIndex(where: { $0.timeoutNanoseconds == timeout }) {
            setupQueues[index].append(connection)
        } else {
            var queue = SetupQueue(timeoutNanoseconds: timeout)
            queue.append(connection)
            setupQueues.append(queue)
        }
    }

    private func expireDeadlines(now: UInt64) {
        for index in setupQueues.indices {
            while let head = setupQueues[index].head {
                guard let connection = connectionInSetup(head) else {
                    setupQueues[index].removeHead()
                    continue
                }
                guard connection.deadline <= now else { break }
                setupQueues[index].removeHead()
                close(connection, end: .failed(.timedOut))
            }
            setupQueues[index].compact(of: self)
        }
        // Queues of `-o` values no pipe uses any more (after reloads) are dropped once empty.
        if setupQueues.count > 8 { setupQueues.removeAll { $0.isEmpty } }
    }

    // MARK: - Listeners

    /// Brings this loop's listener registrations in line with the engine's pipe list: new
    /// pipes are watched, retired ones dropped, paused ones with room again resumed.
    func syncListeners() {
        if context.isStopping {
            dropAllListeners()
            discardAllPools()
            return
        }
        let (pipes, version) = context.pipes
        if version != syncedVersion {
            let wanted = Dictionary(pipes.filter { !$0.isRetired }.map { ($0.identifier, $0) }, uniquingKeysWith: { first, _ in first })
            for (identifier, entry) in listeners where wanted[identifier] == nil {
                if case .listening = entry.state { try? epoll.remove(entry.pipe.listener) }
                listeners[identifier] = nil
            }
            for (identifier, pipe) in wanted where listeners[identifier] == nil {
                listeners[identifier] = (pipe, .pausedAtLimit)
                resumeListening(identifier)
            }
            syncedPipesVersion.store(version, ordering: .releasing)
            refreshPools()
        }
        for (identifier, entry) in listeners {
            if case .pausedAtLimit = entry.state, entry.pipe.hasRoom(limit: entry.pipe.settings.maxConnections) {
                resumeListening(identifier)
            }
        }
    }

    private func dropAllListeners() {
        guard !stoppedListening else { return }
        stoppedListening = true
        for (_, entry) in listeners {
            if case .listening = entry.state { try? epoll.remove(entry.pipe.listener) }
        }
        listeners.removeAll()
    }

    func resumeListening(_ identifier: Int) {
        guard let entry = listeners[identifier], !context.isStopping, !entry.pipe.isRetired else { return }
        if case .listening = entry.state { return }
        do {
            try epoll.add(entry.pipe.listener, events: [.readable, .exclusive], token: Self.listenerToken(entry.pipe))
            listeners[identifier] = (entry.pipe, .listening)
        } catch {
            context.log.log(.error, "\(entry.pipe.name): cannot watch the listening socket: \(error)")
            listeners[identifier] = (entry.pipe, .backingOff(until: MonotonicClock.nanoseconds + Self.acceptBackoffNanoseconds))
        }
    }

    func pauseListening(_ identifier: Int, as state: ListenerState) {
        guard let entry = listeners[identifier] else { return }
        if case .listening = entry.state { try? epoll.remove(entry.pipe.listener) }
        listeners[identifier] = (entry.pipe, state)
    }

    private func resumeListenersAfterBackoff(now: UInt64) {
        for (identifier, entry) in listeners {
            if case .backingOff(let until) = entry.state, now >= until { resumeListening(identifier) }
        }
    }

    // MARK: - Driving a connection

    /// Does all the work a connection's remembered readiness allows, moving through phases.
    func advance(_ connection: Connection) {
        do {
            while true {
                let before = connection.phase
                switch connection.phase {
                case .connectingTarget: try continueConnecting(connection)
                case .handshaking: try continueHandshake(connection)
                case .piping: try pump(connection); return
                case .pooled: keepPooled(connection); return
                case .closed: return
                }
                if connection.phase == before { return }
            }
        } catch {
            close(connection, end: error)
        }
    }

    // MARK: - Closing

    /// Closes both sockets at once and frees the slot; logs failures with the peer's address.
    /// With `resettingPlaintext`, the plaintext side is reset (RST) instead of closed.
    func close(_ connection: Connection, end: ConnectionEnd?, resettingPlaintext: Bool = false) {
        guard connection.phase != .closed else { return }
        let phaseBefore = connection.phase
        connection.phase = .closed
        if resettingPlaintext, let plaintext = connection.plaintext { try? plaintext.setLingerReset() }
        connection.plaintext?.close()
        connection.encrypted?.close()
        connection.plaintext = nil
        connection.encrypted = nil
        connection.handshake = nil
        connection.sealer = nil
        connection.opener = nil
        connection.pendingToEncrypted = nil
        connection.pendingToPlaintext = nil
        connections[connection.slot] = nil
        freeSlots.append(connection.slot)
        connectionCount -= 1
        var evicted = false
        if case .evicted? = end { evicted = true }
        if connection.isPoolMember {
            poolMemberClosed(connection, wasReady: phaseBefore == .pooled, failed: end != nil)
        } else if let pipe = connection.pipe, pipe.releaseConnection(limit: connection.settings.maxConnections), !evicted {
            // Room under -n again: paused loops (this one included) resume. (An evicted
            // connection's place is taken at once by the newcomer that evicted it.)
            context.wakeAllLoops()
        }
        if connection.pipe != nil && !connection.isPoolMember { account(connection, end: end, phaseBefore: phaseBefore) }
        var reported: ProxyError?
        switch end {
        case nil:
            break
        case .reset?:
            reported = .connectionReset
        case .evicted?:
            reported = nil
        case .failed(let error)?:
            reported = error
            logFailure(error, of: connection)
        }
        onConnectionEnd?(reported)
    }

    /// Counts how the connection ended (metrics) and, at `--log-level info`, logs one line
    /// with its pipe, peer, duration, bytes each way and why it ended.
    private func account(_ connection: Connection, end: ConnectionEnd?, phaseBefore: Connection.Phase) {
        let inHandshake = phaseBefore == .handshaking
        var cause = ConnectionEndCause.closed
        var handshakeFailure: HandshakeFailureReason?
        var why = "closed"
        switch end {
        case nil:
            why = "closed by both sides"
        case .evicted?:
            cause = .handshakeFailed
            handshakeFailure = .other
            why = "dropped unauthenticated at the connection limit"
        case .reset?:
            if inHandshake {
                cause = .handshakeFailed
                handshakeFailure = .peerClosed
            } else {
                cause = .reset
            }
            why = "reset by peer"
        case .failed(let error)?:
            why = error.description
            switch error {
            case .timedOut:
                cause = .timeout
                if inHandshake { handshakeFailure = .timeout }
            case .connectFailed:
                cause = .targetConnectFailed
                connection.settings.metrics?.targetConnectFailed()
            case .protocolFailure(let failure) where inHandshake:
                cause = .handshakeFailed
                switch failure {
                case .handshakeAuthenticationFailed: handshakeFailure = .authentication
                case .forwardSecrecyRequired: handshakeFailure = .forwardSecrecyRequired
                case .truncated: handshakeFailure = .peerClosed
                default: handshakeFailure = .other
                }
            case .handshakeRefusedByServer:
                cause = .handshakeFailed
                handshakeFailure = .peerClosed
            case .protocolFailure, .truncatedStream:
                cause = .protocolError
            case .connectionReset:
                cause = .reset
            default:
                cause = inHandshake ? .handshakeFailed : .other
                if inHandshake { handshakeFailure = .other }
            }
        }
        if let metrics = connection.settings.metrics {
            if let handshakeFailure { metrics.handshakeFailed(handshakeFailure) }
            metrics.connectionClosed(cause)
        }
        if context.log.isEnabled(.info) {
            let milliseconds = (MonotonicClock.nanoseconds &- connection.acceptedAt) / 1_000_000
            let fraction = String(milliseconds % 1000)
            let duration = "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
            context.log.log(.info, "\(connection.settings.name): connection from \(connection.peerDescription) ended after \(duration) s, \(connection.bytesSourceToTarget) bytes to the target, \(connection.bytesTargetToSource) bytes back: \(why)")
        }
    }

    /// Logs a failed connection, aggregated per pipe and cause (see `ProxyLog`).
    private func logFailure(_ error: ProxyError, of connection: Connection) {
        let pipeName = connection.settings.name
        let cause = error.aggregationCause
        context.log.connectionFailed(
            key: "\(pipeName)\u{0}\(cause)",
            text: "\(pipeName): connection from \(connection.peerDescription): \(error.description)",
            summary: "\(pipeName): \(error.description)")
    }

    private func closeAllConnections() {
        for case let connection? in connections { close(connection, end: nil) }
    }
}

/// Connections in setup with the same `-o`, in accept order (hence in deadline order).
struct SetupQueue {
    /// A queued connection, by slot and generation (it may have left setup since).
    typealias Entry = (slot: Int, generation: UInt32)

    /// The `-o` of every connection in this queue, in nanoseconds.
    let timeoutNanoseconds: UInt64

    init(timeoutNanoseconds: UInt64 = 0) { self.timeoutNanoseconds = timeoutNanoseconds }

    private(set) var entries: [Entry] = []
    private(set) var headIndex = 0
    /// Length at which stale middle entries are filtered out next (doubles with the live count).
    private var compactionLength = 512

    var isEmpty: Bool { headIndex == entries.count }
    var head: Entry? { headIndex < entries.count ? entries[headIndex] : nil }
    /// Entries from the oldest on (some may have left setup).
    var live: ArraySlice<Entry> { entries[headIndex...] }

    mutating func append(_ connection: Connection) { append((connection.slot, connection.generation)) }

    mutating func append(_ entry: Entry) { entries.append(entry) }

    /// Entries held, consumed head included (for tests).
    var storedCount: Int { entries.count }

    mutating func removeHead() { headIndex += 1 }

    mutating func dropFinishedHead(of loop: EventLoop) {
        dropFinishedHead { loop.connectionInSetup($0) != nil }
    }

    mutating func dropFinishedHead(isInSetup: (Entry) -> Bool) {
        while let head, !isInSetup(head) { headIndex += 1 }
    }

    mutating func compact(of loop: EventLoop) {
        compact { loop.connectionInSetup($0) != nil }
    }

    /// Frees the consumed head, and stale middle entries once the queue has doubled since the
    /// last such pass, so the queue stays bounded by about twice the connections in setup
    /// (even with `-o` infinite, where an idle connection can sit at the head for ever).
    mutating func compact(isInSetup: (Entry) -> Bool) {
        dropFinishedHead(isInSetup: isInSetup)
        if headIndex == entries.count && headIndex > 0 {
            // Drained: start again at the front, keeping the storage.
            entries.removeAll(keepingCapacity: true)
            headIndex = 0
            return
        }
        let remaining = entries.count - headIndex
        if headIndex > 64 && headIndex * 2 > entries.count {
            entries.removeFirst(headIndex)
            headIndex = 0
        } else if remaining >= compactionLength {
            entries = Array(entries[headIndex...].filter { isInSetup($0) })
            headIndex = 0
            compactionLength = max(512, 2 * entries.count)
        }
    }
}
