import SpipedProtocol
import SpipedSystem

/// One event loop: a thread with its own epoll instance and its own connections.
///
/// **Edge-triggered epoll.** Each socket is registered once, for reading and writing, with
/// `EPOLLET`; the loop remembers readiness in the connection and clears it on `EAGAIN` (or a
/// short read). Backpressure is then simply *not reading* a side while the other side has
/// unwritten output — no `epoll_ctl(MOD)` per stall and resume, one `epoll_ctl` per socket
/// lifetime. The kernel buffers fill and TCP flow control slows the sender.
///
/// **Shared listener with `EPOLLEXCLUSIVE`.** Every loop adds the listening socket
/// (level-triggered, exclusive) and accepts for itself, so the kernel hands a new
/// connection to one idle loop and there is no cross-thread hand-off per connection. A loop
/// removes the listener from its own epoll to pause (at `-n`, after `EMFILE`, when stopping).
///
/// **Deadlines.** Every connection's setup deadline is "accept time + `-o`", so deadlines
/// are created in increasing order: a FIFO replaces a heap, and `epoll_wait`'s timeout is
/// the head's deadline. Entries of connections that finished setup are skipped lazily.
///
/// The loop object is used by its own thread only, except `wake()`.
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

    private static let listenerToken: UInt64 = 1 << 63
    private static let wakeupToken: UInt64 = 1 << 63 | 1

    let context: ProxyContext
    let name: String
    private let epoll: Epoll
    private let wakeup: EventNotifier

    private var connections: [Connection?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []
    /// Connections owned by this loop.
    private(set) var connectionCount = 0

    private var deadlineQueue: [(deadline: UInt64, slot: Int, generation: UInt32)] = []
    private var deadlineQueueHead = 0
    /// Connections that stopped reading only to let others run; served after the next poll.
    private var anotherTurn: [Connection] = []

    private enum ListenerState { case none, listening, pausedAtLimit, backingOff(until: UInt64), stopped }
    private var listenerState: ListenerState = .none

    /// Shared by all connections of this loop: what was read, and what it became.
    private let inputBuffer: UnsafeMutableRawBufferPointer
    private let outputBuffer: UnsafeMutableRawBufferPointer

    /// For `spipe`: called once when a connection ends (nil = finished normally).
    var onConnectionEnd: ((ProxyError?) -> Void)?
    /// A fatal loop error (epoll failed), reported by `run()`.
    private(set) var failure: ProxyError?

    init(context: ProxyContext, name: String) throws(SystemError) {
        self.context = context
        self.name = name
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

    /// Wakes the loop from any thread (stop requests, room under `-n`).
    func wake() { wakeup.signal() }

    // MARK: - Running

    /// Serves until the proxy stops and this loop's connections are finished (or, without a
    /// listener, until its connections are finished).
    func run() {
        if context.listener != nil && !context.isStopping { resumeListening() }
        while true {
            if connectionCount == 0 && (context.isStopping || context.listener == nil) { break }
            let timeout = pollTimeout(now: MonotonicClock.nanoseconds)
            do {
                try epoll.wait(timeoutMilliseconds: timeout) { event in handle(event) }
            } catch {
                failure = .system(error)
                context.log(.error, "\(name): \(error)")
                context.beginStopping()
                closeAllConnections()
                break
            }
            serveConnectionsWaitingForTurn()
            let now = MonotonicClock.nanoseconds
            expireDeadlines(now: now)
            if case .backingOff(let until) = listenerState, now >= until { resumeListening() }
        }
        pauseListening(as: .stopped)
    }

    private func pollTimeout(now: UInt64) -> Int32 {
        if !anotherTurn.isEmpty { return 0 }
        // Drop entries of connections that finished setup, so they cause no wake-up.
        while deadlineQueueHead < deadlineQueue.count && !isInSetup(deadlineQueue[deadlineQueueHead]) {
            deadlineQueueHead += 1
        }
        var earliest: UInt64?
        if deadlineQueueHead < deadlineQueue.count { earliest = deadlineQueue[deadlineQueueHead].deadline }
        if case .backingOff(let until) = listenerState { earliest = min(earliest ?? until, until) }
        guard let earliest else { return -1 }
        if earliest <= now { return 0 }
        // Round up so the deadline has passed when the wait returns.
        let milliseconds = (earliest - now + 999_999) / 1_000_000
        return Int32(clamping: milliseconds)
    }

    private func handle(_ event: EpollEvent) {
        switch event.token {
        case Self.listenerToken:
            acceptConnections()
        case Self.wakeupToken:
            wakeup.waitAndReset()
            if context.isStopping {
                pauseListening(as: .stopped)
            } else if case .pausedAtLimit = listenerState, context.hasRoomForConnection {
                resumeListening()
            }
        default:
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
    }

    private func token(_ connection: Connection, encryptedSide: Bool) -> UInt64 {
        UInt64(connection.generation) << 32 | UInt64(connection.slot) << 1 | (encryptedSide ? 1 : 0)
    }

    /// Watches a connection's socket for both directions, edge-triggered.
    private func watch(_ fd: FileDescriptor, of connection: Connection, encryptedSide: Bool) throws(SystemError) {
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

    /// True when the deadline entry's connection still exists and is connecting or handshaking.
    private func isInSetup(_ entry: (deadline: UInt64, slot: Int, generation: UInt32)) -> Bool {
        guard let connection = connections[entry.slot], connection.generation == entry.generation else { return false }
        return connection.phase == .connectingTarget || connection.phase == .handshaking
    }

    private func expireDeadlines(now: UInt64) {
        while deadlineQueueHead < deadlineQueue.count {
            let entry = deadlineQueue[deadlineQueueHead]
            guard entry.deadline <= now else { break }
            deadlineQueueHead += 1
            if isInSetup(entry), let connection = connections[entry.slot] {
                close(connection, end: .failed(.timedOut))
            }
        }
        if deadlineQueueHead > 64 && deadlineQueueHead * 2 > deadlineQueue.count {
            deadlineQueue.removeFirst(deadlineQueueHead)
            deadlineQueueHead = 0
        }
    }

    // MARK: - Listener

    private func resumeListening() {
        guard let listener = context.listener else { return }
        switch listenerState {
        case .listening, .stopped: return
        default: break
        }
        if context.isStopping { listenerState = .stopped; return }
        do {
            try epoll.add(listener, events: [.readable, .exclusive], token: Self.listenerToken)
            listenerState = .listening
        } catch {
            context.log(.error, "\(name): cannot watch the listening socket: \(error)")
            listenerState = .backingOff(until: MonotonicClock.nanoseconds + Self.acceptBackoffNanoseconds)
        }
    }

    private func pauseListening(as state: ListenerState) {
        if case .listening = listenerState, let listener = context.listener {
            try? epoll.remove(listener)
        }
        if case .stopped = listenerState { return }
        if context.listener == nil { return }
        listenerState = state
    }

    private func acceptConnections() {
        guard let listener = context.listener, case .listening = listenerState else { return }
        for _ in 0..<Self.acceptsPerWakeup {
            if context.isStopping { pauseListening(as: .stopped); return }
            guard context.reserveConnection() else {
                pauseListening(as: .pausedAtLimit)
                context.warnLimitReached()
                // A connection may have closed between the check and the pause.
                if context.hasRoomForConnection { resumeListening() }
                return
            }
            switch listener.acceptResult() {
            case .success(let (fd, peer)):
                context.acceptSucceeded()
                adopt(accepted: fd, peer: peer)
            case .failure(let errno):
                context.releaseConnection()
                if errno == .wouldBlock { return }
                if errno == .connectionAborted || errno == .protocolError || errno == .interrupted { continue }
                // Stopping: the listener was shut down under us (EINVAL); not a failure.
                if context.isStopping { pauseListening(as: .stopped); return }
                // EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected: back off, do not die.
                context.warnAcceptFailure(errno)
                pauseListening(as: .backingOff(until: MonotonicClock.nanoseconds + Self.acceptBackoffNanoseconds))
                return
            }
        }
    }

    // MARK: - Connection setup

    private func allocateSlot() -> (Int, UInt32) {
        if let slot = freeSlots.popLast() {
            generations[slot] &+= 1
            return (slot, generations[slot])
        }
        connections.append(nil)
        generations.append(0)
        return (connections.count - 1, 0)
    }

    /// Sets TCP_NODELAY and (unless `-j`) SO_KEEPALIVE on a TCP socket.
    private func configureTCP(_ fd: FileDescriptor) {
        try? fd.setNoDelay()
        if context.configuration.keepAlive { try? fd.setKeepAlive() }
    }

    /// Takes ownership of an accepted socket (whose `-n` reservation is already made).
    private func adopt(accepted fd: FileDescriptor, peer: SocketAddress?) {
        if let peer, peer.isInternet { configureTCP(fd) }
        let description: String
        if let peer, peer.isInternet { description = peer.description } else { description = "unix socket peer" }
        adopt(applicationSide: fd, peerDescription: description)
    }

    /// Starts a connection on an accepted (or, for `spipe`, given) socket. With `-e` the socket
    /// carries plaintext and the target is connected first; with `-d` it carries the handshake.
    func adopt(applicationSide fd: FileDescriptor, peerDescription: String) {
        let (slot, generation) = allocateSlot()
        let deadline = MonotonicClock.nanoseconds + context.timeoutNanoseconds
        let encrypting = context.configuration.mode == .encrypt
        let connection = Connection(slot: slot, generation: generation, peerDescription: peerDescription,
                                    deadline: deadline, phase: encrypting ? .connectingTarget : .handshaking)
        connections[slot] = connection
        connectionCount += 1
        deadlineQueue.append((deadline, slot, generation))
        if encrypting {
            connection.plaintext = fd
        } else {
            connection.encrypted = fd
        }
        // A fresh socket is assumed ready both ways; EAGAIN corrects that cheaply.
        connection.plaintextReadable = encrypting
        connection.plaintextWritable = encrypting
        connection.encryptedReadable = !encrypting
        connection.encryptedWritable = !encrypting
        do {
            try watch(fd, of: connection, encryptedSide: !encrypting)
        } catch {
            close(connection, end: .failed(.system(error)))
            return
        }
        if !encrypting {
            do {
                try startHandshake(connection, role: .server)
            } catch {
                close(connection, end: error)
                return
            }
        }
        advance(connection)
    }

    private func startHandshake(_ connection: Connection, role: HandshakeRole) throws(ConnectionEnd) {
        let configuration = context.configuration
        let keyPair = configuration.handshake.fast ? nil : context.keyPairPool?.take()
        do {
            connection.handshake = try Handshake(role: role, key: configuration.key, options: configuration.handshake,
                                                 backend: configuration.backend, keyPair: keyPair)
        } catch {
            throw .failed(.protocolFailure(error))
        }
        connection.phase = .handshaking
    }

    /// The socket the target connection uses: encrypted with `-e`, plaintext with `-d`.
    private func targetSocket(of connection: Connection) -> FileDescriptor? {
        context.configuration.mode == .encrypt ? connection.encrypted : connection.plaintext
    }

    /// Opens a socket to the next target address that does not fail at once.
    private func connectToNextTargetAddress(_ connection: Connection) throws(ConnectionEnd) {
        let encrypting = context.configuration.mode == .encrypt
        if encrypting { connection.encryptedPeerClosed = false } else { connection.plaintextPeerClosed = false }
        if connection.targetAddresses.isEmpty && connection.nextTargetAddress == 0 {
            connection.targetAddresses = context.targets.current
        }
        while connection.nextTargetAddress < connection.targetAddresses.count {
            let address = connection.targetAddresses[connection.nextTargetAddress]
            connection.nextTargetAddress += 1
            let fd: FileDescriptor
            do {
                fd = try FileDescriptor.streamSocket(family: address.family)
            } catch {
                connection.lastConnectError = error
                continue
            }
            if address.isInternet { configureTCP(fd) }
            if let local = context.bindAddresses.first(where: { $0.family == address.family }) {
                do {
                    try fd.bind(to: local)
                } catch {
                    fd.close()
                    connection.lastConnectError = error
                    continue
                }
            }
            switch fd.connectResult(to: address) {
            case .failure(let errno):
                fd.close()
                connection.lastConnectError = SystemError("connect to \(address)", errno)
                continue
            case .success(let progress):
                if encrypting { connection.encrypted = fd } else { connection.plaintext = fd }
                let connected = progress == .connected
                if encrypting {
                    connection.encryptedReadable = false
                    connection.encryptedWritable = connected
                } else {
                    connection.plaintextReadable = false
                    connection.plaintextWritable = connected
                }
                do {
                    try watch(fd, of: connection, encryptedSide: encrypting)
                } catch {
                    throw .failed(.system(error))
                }
                return
            }
        }
        let cause = connection.lastConnectError ?? SystemError("connect", .hostUnreachable)
        throw .failed(.connectFailed(address: context.targets.target.displayText, cause))
    }

    /// Connecting phase: start, or check a finished non-blocking connect.
    private func continueConnecting(_ connection: Connection) throws(ConnectionEnd) {
        let encrypting = context.configuration.mode == .encrypt
        guard let fd = targetSocket(of: connection) else {
            try connectToNextTargetAddress(connection)
            return
        }
        let writable = encrypting ? connection.encryptedWritable : connection.plaintextWritable
        guard writable else { return }
        if let errno = fd.pendingSocketError() {
            fd.close()
            if encrypting { connection.encrypted = nil } else { connection.plaintext = nil }
            connection.lastConnectError = SystemError("connect to \(connection.targetAddresses[connection.nextTargetAddress - 1])", errno)
            try connectToNextTargetAddress(connection)
            return
        }
        // Connected. Data the peer sends is noticed through the edge-triggered registration.
        if encrypting {
            connection.encryptedReadable = true
            try startHandshake(connection, role: .client)
        } else {
            connection.plaintextReadable = true
            connection.phase = .piping
        }
    }

    /// Handshake phase: write what the handshake has to send, read exactly what it still needs
    /// (never beyond its end, so no packet bytes are read here), and finish.
    private func continueHandshake(_ connection: Connection) throws(ConnectionEnd) {
        guard let handshake = connection.handshake, let fd = connection.encrypted else { return }
        try flushHandshake(handshake, to: fd, connection)
        while !handshake.isComplete && connection.encryptedReadable {
            let wanted = Self.handshakeInputByteCount - connection.handshakeBytesReceived
            guard wanted > 0 else { break }
            let destination = UnsafeMutableRawBufferPointer(rebasing: inputBuffer[0..<wanted])
            switch fd.readResult(into: destination) {
            case .failure(let errno) where errno == .wouldBlock:
                connection.encryptedReadable = false
            case .failure(let errno):
                throw errno.isConnectionClosure ? .reset : .failed(.system(SystemError("read", errno)))
            case .success(0):
                do {
                    try handshake.receiveEndOfStream()
                } catch {
                    throw .failed(.protocolFailure(error))
                }
            case .success(let count):
                let received = UnsafeRawBufferPointer(rebasing: inputBuffer[0..<count])
                do throws(SpipedProtocolError) {
                    let consumed = try handshake.receive(received)
                    guard consumed == count else { throw SpipedProtocolError.truncated }
                } catch {
                    throw .failed(.protocolFailure(error))
                }
                connection.handshakeBytesReceived += count
                try flushHandshake(handshake, to: fd, connection)
            }
        }
        guard handshake.isComplete, handshake.pendingOutput.isEmpty else { return }
        let decrypting = context.configuration.mode == .decrypt
        if decrypting && targetSocket(of: connection) == nil {
            // -d: the peer's MAC verified, so it holds the key: start the (non-blocking)
            // connect to the target now, so it progresses during our exponentiation.
            try connectToNextTargetAddress(connection)
        }
        // Our last handshake bytes are on the wire: the peer's exponentiation now runs
        // alongside ours (for -d, yS went out before y_C^x_S is computed).
        do {
            try handshake.finishKeyAgreement()
        } catch {
            throw .failed(.protocolFailure(error))
        }
        guard let session = handshake.makeSession() else { throw .failed(.protocolFailure(.alreadyFailed)) }
        connection.handshake = nil
        connection.sealer = session.sealer
        connection.opener = session.opener
        if decrypting {
            // -d: only a peer that proved it holds the key gets a connection to the target
            // (started above); wait until it is established.
            connection.phase = .connectingTarget
        } else {
            connection.phase = .piping
        }
    }

    private func flushHandshake(_ handshake: Handshake, to fd: FileDescriptor, _ connection: Connection) throws(ConnectionEnd) {
        while connection.encryptedWritable {
            let pending = handshake.pendingOutput
            if pending.isEmpty { return }
            switch fd.writeResult(pending) {
            case .success(let count):
                handshake.consumeOutput(count)
            case .failure(let errno) where errno == .wouldBlock:
                connection.encryptedWritable = false
            case .failure(let errno):
                throw errno.isConnectionClosure ? .reset : .failed(.system(SystemError("write", errno)))
            }
        }
    }

    // MARK: - Driving a connection

    /// Does all the work a connection's remembered readiness allows, moving through phases.
    private func advance(_ connection: Connection) {
        do {
            while true {
                let before = connection.phase
                switch connection.phase {
                case .connectingTarget: try continueConnecting(connection)
                case .handshaking: try continueHandshake(connection)
                case .piping: try pump(connection); return
                case .closed: return
                }
                if connection.phase == before { return }
            }
        } catch {
            close(connection, end: error)
        }
    }

    /// Piping phase: both directions, then close when both have ended.
    private func pump(_ connection: Connection) throws(ConnectionEnd) {
        try pumpPlaintextToEncrypted(connection)
        try pumpEncryptedToPlaintext(connection)
        if connection.plaintextInputEnded && connection.encryptedInputEnded
            && connection.pendingToEncrypted == nil && connection.pendingToPlaintext == nil {
            close(connection, end: nil)
        }
    }

    private func queueForAnotherTurn(_ connection: Connection) {
        if !connection.isQueuedForAnotherTurn {
            connection.isQueuedForAnotherTurn = true
            anotherTurn.append(connection)
        }
    }

    /// Writes `bytes` to `fd` unless output is already waiting; keeps what the socket did not take.
    /// Returns false if something is left over (the socket is full).
    private func write(_ bytes: UnsafeRawBufferPointer, to fd: FileDescriptor, pending: inout PendingOutput?, writable: inout Bool) throws(ConnectionEnd) {
        if pending != nil || !writable {
            if pending == nil { pending = PendingOutput(bytes) } else { pending!.append(bytes) }
            return
        }
        switch fd.writeResult(bytes) {
        case .success(let count):
            if count < bytes.count {
                pending = PendingOutput(UnsafeRawBufferPointer(rebasing: bytes[count...]))
                writable = false
            }
        case .failure(let errno) where errno == .wouldBlock:
            pending = PendingOutput(bytes)
            writable = false
        case .failure(let errno):
            throw errno.isConnectionClosure ? .reset : .failed(.system(SystemError("write", errno)))
        }
    }

    /// Writes out what is waiting; returns true when nothing is left.
    private func flush(_ pending: inout PendingOutput?, to fd: FileDescriptor, writable: inout Bool) throws(ConnectionEnd) -> Bool {
        guard pending != nil else { return true }
        while writable {
            let result = pending!.withUnwritten { fd.writeResult($0) }
            switch result {
            case .success(let count):
                if pending!.consume(count) {
                    pending = nil
                    return true
                }
            case .failure(let errno) where errno == .wouldBlock:
                writable = false
            case .failure(let errno):
                throw errno.isConnectionClosure ? .reset : .failed(.system(SystemError("write", errno)))
            }
        }
        return false
    }

    private func shutdownWriting(_ fd: FileDescriptor) throws(ConnectionEnd) {
        if case .failure(let errno) = fd.shutdownResult(.write) {
            throw errno.isConnectionClosure ? .reset : .failed(.system(SystemError("shutdown", errno)))
        }
    }

    /// What one read from a pump's source gave.
    private enum PumpRead {
        /// Nothing to read now (EAGAIN); the next arrival raises a new edge.
        case drained
        /// The peer closed its side.
        case endOfStream
        /// This many bytes arrived.
        case bytes(Int)
    }

    /// Reads once from a pump's source into `area`. EAGAIN clears `readable`, and so does a
    /// short read: the socket is drained and the next arrival raises a new edge — unless the
    /// peer's FIN already came with this data (`peerClosed`), after which no edge will follow.
    private func readOnce(_ source: FileDescriptor, into area: UnsafeMutableRawBufferPointer,
                          readable: inout Bool, peerClosed: Bool) throws(ConnectionEnd) -> PumpRead {
        switch source.readResult(into: area) {
        case .failure(let errno) where errno == .wouldBlock:
            readable = false
            return .drained
        case .failure(let errno):
            throw errno.isConnectionClosure ? .reset : .failed(.system(SystemError("read", errno)))
        case .success(0):
            return .endOfStream
        case .success(let count):
            if count < area.count && !peerClosed { readable = false }
            return .bytes(count)
        }
    }

    /// Counts one more read of this turn; after `readsPerTurn` reads the connection waits for
    /// another turn (so one busy connection cannot starve the others) and this returns false.
    private func takeReadTurn(_ connection: Connection, reads: inout Int) -> Bool {
        if reads == Self.readsPerTurn {
            queueForAnotherTurn(connection)
            return false
        }
        reads += 1
        return true
    }

    /// Plaintext socket → `PacketSealer.seal` → encrypted socket.
    private func pumpPlaintextToEncrypted(_ connection: Connection) throws(ConnectionEnd) {
        guard let source = connection.plaintext, let destination = connection.encrypted, let sealer = connection.sealer else { return }
        guard try flush(&connection.pendingToEncrypted, to: destination, writable: &connection.encryptedWritable) else { return }
        var reads = 0
        while connection.plaintextReadable && !connection.plaintextInputEnded && connection.pendingToEncrypted == nil {
            guard takeReadTurn(connection, reads: &reads) else { return }
            let readArea = UnsafeMutableRawBufferPointer(rebasing: inputBuffer[0..<Self.plaintextReadByteCount])
            switch try readOnce(source, into: readArea, readable: &connection.plaintextReadable,
                                peerClosed: connection.plaintextPeerClosed) {
            case .drained:
                break
            case .endOfStream:
                connection.plaintextInputEnded = true
                try shutdownWriting(destination)
            case .bytes(let count):
                let sealed: (consumed: Int, produced: Int)
                do {
                    sealed = try sealer.seal(UnsafeRawBufferPointer(rebasing: inputBuffer[0..<count]), into: outputBuffer)
                } catch {
                    throw .failed(.protocolFailure(error))
                }
                // outputBuffer holds outputPacketCount packets, a read at most one payload fewer: all is sealed.
                try write(UnsafeRawBufferPointer(rebasing: outputBuffer[0..<sealed.produced]), to: destination,
                          pending: &connection.pendingToEncrypted, writable: &connection.encryptedWritable)
            }
        }
    }

    /// Encrypted socket → `PacketOpener.open` → plaintext socket.
    private func pumpEncryptedToPlaintext(_ connection: Connection) throws(ConnectionEnd) {
        guard let source = connection.encrypted, let destination = connection.plaintext, let opener = connection.opener else { return }
        guard try flush(&connection.pendingToPlaintext, to: destination, writable: &connection.plaintextWritable) else { return }
        var reads = 0
        while connection.encryptedReadable && !connection.encryptedInputEnded && connection.pendingToPlaintext == nil {
            guard takeReadTurn(connection, reads: &reads) else { return }
            let readArea = UnsafeMutableRawBufferPointer(rebasing: inputBuffer[0..<Self.ciphertextReadByteCount])
            switch try readOnce(source, into: readArea, readable: &connection.encryptedReadable,
                                peerClosed: connection.encryptedPeerClosed) {
            case .drained:
                break
            case .endOfStream:
                // A partial packet at end of stream is an error (truncation).
                do {
                    try opener.receiveEndOfStream()
                } catch {
                    throw .failed(.protocolFailure(error))
                }
                connection.encryptedInputEnded = true
                try shutdownWriting(destination)
            case .bytes(let count):
                var offset = 0
                while offset < count {
                    let opened: (consumed: Int, produced: Int)
                    do {
                        opened = try opener.open(UnsafeRawBufferPointer(rebasing: inputBuffer[offset..<count]), into: outputBuffer)
                    } catch {
                        throw .failed(.protocolFailure(error))
                    }
                    offset += opened.consumed
                    if opened.produced > 0 {
                        try write(UnsafeRawBufferPointer(rebasing: outputBuffer[0..<opened.produced]), to: destination,
                                  pending: &connection.pendingToPlaintext, writable: &connection.plaintextWritable)
                    }
                    if opened.consumed == 0 && opened.produced == 0 { break }
                }
            }
        }
    }

    // MARK: - Closing

    /// Closes both sockets at once and frees the slot; logs failures with the peer's address.
    private func close(_ connection: Connection, end: ConnectionEnd?) {
        guard connection.phase != .closed else { return }
        connection.phase = .closed
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
        if context.listener != nil { context.releaseConnection() }
        var reported: ProxyError?
        switch end {
        case nil:
            break
        case .reset?:
            reported = .connectionReset
        case .failed(let error)?:
            reported = error
            context.log(.warning, "connection from \(connection.peerDescription): \(error.description)")
        }
        onConnectionEnd?(reported)
    }

    private func closeAllConnections() {
        for case let connection? in connections { close(connection, end: nil) }
    }
}

