import SpipedProtocol
import SpipedSystem

/// Connection setup: accepting (with the connection limit and its eviction policy), connecting
/// to the target, and the handshake. Everything runs on the owning loop's thread.
///
/// **At the connection limit (`-n`) a decrypt pipe evicts.** Connections that have not proved
/// they hold a key cost a stranger nothing to open, so they must not be able to lock key
/// holders out: when a decrypt pipe is full, the loop accepts the new connection anyway and
/// closes one of its own connections of that pipe that has not authenticated yet — the oldest
/// that has sent nothing at all, once it has had `silentGraceNanoseconds` to say something;
/// failing that, the oldest still in its handshake, once it has had `handshakeGraceNanoseconds`
/// to finish (a key holder needs one round trip). Authenticated connections are never evicted.
/// While every candidate is younger than its grace, the loop pauses accepting on that pipe
/// until the oldest one's grace ends; with no candidate at all, until a connection closes (as
/// encrypt pipes always do at their limit). The other loops, which hold the rest of the pipe's
/// connections, go on admitting meanwhile.
///
/// So a flood of idle connections rotates through the pipe's slots, each stranger lasting at
/// least the grace, while a key holder's connection — which sends its nonce at once and
/// finishes within a round trip — is out of the eviction order as soon as its nonce is read.
extension EventLoop {
    /// How long a connection that has sent nothing is safe from eviction: time for a client
    /// that was just accepted to be scheduled and send its nonce.
    static let silentGraceNanoseconds: UInt64 = 20_000_000
    /// How long a connection that has sent part of its handshake is safe from eviction.
    static let handshakeGraceNanoseconds: UInt64 = 250_000_000

    // MARK: - Accepting

    func acceptConnections(pipeIdentifier identifier: Int) {
        guard let entry = listeners[identifier], case .listening = entry.state else { return }
        let pipe = entry.pipe
        for _ in 0..<Self.acceptsPerWakeup {
            if context.isStopping || pipe.isRetired {
                pauseListening(identifier, as: .pausedAtLimit)
                return
            }
            let settings = pipe.settings
            var victim: Connection?
            if !pipe.reserveConnection(limit: settings.maxConnections) {
                var graceEnds: UInt64?
                if settings.evictsUnauthenticatedAtLimit { (victim, graceEnds) = evictionVictim(of: pipe) }
                if victim == nil && pipe.reserveConnection(limit: settings.maxConnections) {
                    // Probing the candidates closed one of them (it had hung up): room again.
                } else if victim == nil, let graceEnds {
                    // Strangers to evict, but none has had its grace yet: accept again then.
                    pauseListening(identifier, as: .backingOff(until: graceEnds))
                    return
                } else if victim == nil {
                    pauseListening(identifier, as: .pausedAtLimit)
                    context.log.connectionFailed(
                        key: "\(settings.name)\u{0}limit",
                        text: "\(settings.name): connection limit (\(settings.maxConnections)) reached; not accepting new connections until one closes",
                        summary: "\(settings.name): connection limit (\(settings.maxConnections)) reached again")
                    // A connection may have closed between the check and the pause.
                    if pipe.hasRoom(limit: settings.maxConnections) { resumeListening(identifier) }
                    return
                }
            }
            switch pipe.listener.acceptResult() {
            case .success(let (fd, peer)):
                pipe.acceptSucceeded()
                if let victim {
                    // Make room: the oldest stranger goes, the newcomer takes its place.
                    close(victim, end: .evicted)
                    pipe.forceReserveConnection()
                    context.log.connectionFailed(
                        key: "\(settings.name)\u{0}evicted",
                        text: "\(settings.name): connection limit (\(settings.maxConnections)) reached: dropped an unauthenticated connection from \(victim.peerDescription) to admit a new one",
                        summary: "\(settings.name): dropped unauthenticated connections at the connection limit (\(settings.maxConnections))")
                }
                adopt(accepted: fd, peer: peer, pipe: pipe, settings: settings)
            case .failure(let errno):
                if victim == nil { _ = pipe.releaseConnection(limit: settings.maxConnections) }
                if errno == .wouldBlock { return }
                if errno == .connectionAborted || errno == .protocolError || errno == .interrupted { continue }
                // Stopping or retired: the listener was shut down under us (EINVAL); not a failure.
                if context.isStopping || pipe.isRetired {
                    pauseListening(identifier, as: .pausedAtLimit)
                    return
                }
                // EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected: back off, do not die.
                if pipe.shouldWarnAcceptFailure() {
                    context.log.log(.warning, "\(settings.name): accept: \(errno); pausing new connections briefly")
                }
                pauseListening(identifier, as: .backingOff(until: MonotonicClock.nanoseconds + Self.acceptBackoffNanoseconds))
                return
            }
        }
    }

    /// The connection to evict to admit a new one (see the type's comment), or nil and when the
    /// first candidate's grace ends (nil too when there is no candidate at all). A silent
    /// candidate is read first: its first bytes may be waiting unread behind the listener's
    /// event in this very batch, and reading them takes it out of the silent order.
    private func evictionVictim(of pipe: Pipe) -> (Connection?, graceEnds: UInt64?) {
        for _ in 0..<8 {
            let (silent, inHandshake) = oldestUnauthenticated(of: pipe)
            let now = MonotonicClock.nanoseconds
            if let silent {
                let graceEnds = silent.acceptedAt &+ Self.silentGraceNanoseconds
                if now < graceEnds {
                    let handshakeGraceEnds = inHandshake.map { $0.acceptedAt &+ Self.handshakeGraceNanoseconds }
                    if let inHandshake, let handshakeGraceEnds, now >= handshakeGraceEnds { return (inHandshake, nil) }
                    return (nil, min(graceEnds, handshakeGraceEnds ?? graceEnds))
                }
                silent.encryptedReadable = true
                advance(silent)
                if silent.phase != .closed && silent.handshakeBytesReceived == 0 && silent.isUnauthenticated {
                    return (silent, nil)
                }
                continue
            }
            guard let inHandshake else { return (nil, nil) }
            let graceEnds = inHandshake.acceptedAt &+ Self.handshakeGraceNanoseconds
            return now >= graceEnds ? (inHandshake, nil) : (nil, graceEnds)
        }
        return (nil, MonotonicClock.nanoseconds &+ Self.silentGraceNanoseconds)
    }

    /// This loop's oldest unauthenticated connection of `pipe` that has sent nothing, and its
    /// oldest one that has sent part of its handshake.
    func oldestUnauthenticated(of pipe: Pipe) -> (silent: Connection?, inHandshake: Connection?) {
        var oldestSilent: Connection?
        var oldestInHandshake: Connection?
        for queue in setupQueues {
            var silentFound = false
            for entry in queue.live {
                guard let connection = connectionInSetup(entry), connection.pipe === pipe, connection.isUnauthenticated else { continue }
                if connection.handshakeBytesReceived == 0 {
                    if !silentFound && (oldestSilent == nil || connection.acceptedAt < oldestSilent!.acceptedAt) { oldestSilent = connection }
                    silentFound = true
                } else if oldestInHandshake == nil || connection.acceptedAt < oldestInHandshake!.acceptedAt {
                    oldestInHandshake = connection
                }
                // Later entries are younger: stop once both kinds are found in this queue.
                if silentFound && oldestInHandshake != nil { break }
            }
        }
        return (oldestSilent, oldestInHandshake)
    }

    private func allocateSlot() -> (Int, UInt32) {
        if let slot = freeSlots.popLast() {
            generations[slot] = (generations[slot] &+ 1) & Self.generationMask
            return (slot, generations[slot])
        }
        connections.append(nil)
        generations.append(0)
        return (connections.count - 1, 0)
    }

    /// Sets TCP_NODELAY and (unless `-j`) SO_KEEPALIVE on a TCP socket.
    private func configureTCP(_ fd: FileDescriptor, keepAlive: Bool) {
        try? fd.setNoDelay()
        if keepAlive { try? fd.setKeepAlive() }
    }

    /// Takes ownership of an accepted socket (whose `-n` reservation is already made).
    private func adopt(accepted fd: FileDescriptor, peer: SocketAddress?, pipe: Pipe, settings: PipeSettings) {
        if let peer, peer.isInternet { configureTCP(fd, keepAlive: settings.keepAlive) }
        let description: String
        if let peer, peer.isInternet { description = peer.description } else { description = "unix socket peer" }
        adopt(applicationSide: fd, peerDescription: description, pipe: pipe, settings: settings)
    }

    /// Starts a connection on an accepted (or, for `spipe`, given) socket. With `-e` the socket
    /// carries plaintext and the target is connected first; with `-d` it carries the handshake.
    func adopt(applicationSide fd: FileDescriptor, peerDescription: String, pipe: Pipe?, settings: PipeSettings) {
        let encrypting = settings.mode == .encrypt
        // --pool: a connection to the target that is already handshaken, if one is ready.
        if encrypting, let pipe, adoptFromPool(client: fd, peerDescription: peerDescription, pipe: pipe, settings: settings) {
            return
        }
        let connection = makeConnection(pipe: pipe, settings: settings, peerDescription: peerDescription,
                                        phase: encrypting ? .connectingTarget : .handshaking)
        if pipe != nil { settings.metrics?.connectionOpened() }
        if encrypting {
            connection.plaintext = fd
            connection.targetBook = settings.targets[0]
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

    /// A new connection in a free slot of this loop, queued for its setup deadline.
    func makeConnection(pipe: Pipe?, settings: PipeSettings, peerDescription: String, phase: Connection.Phase) -> Connection {
        let (slot, generation) = allocateSlot()
        let connection = Connection(slot: slot, generation: generation, pipe: pipe, settings: settings,
                                    peerDescription: peerDescription, acceptedAt: MonotonicClock.nanoseconds, phase: phase)
        connections[slot] = connection
        connectionCount += 1
        enqueueForSetup(connection)
        return connection
    }

    /// Creates the connection's handshake. A client takes a key pair from the pool now (it
    /// sends its y as soon as the server's nonce arrives); a server takes one only once the
    /// client's MAC verified (`keyPairSource`), so strangers cost no exponentiation.
    private func startHandshake(_ connection: Connection, role: HandshakeRole) throws(ConnectionEnd) {
        let settings = connection.settings
        let pool = context.keyPairPool
        let keyPair = (settings.handshake.fast || role == .server) ? nil : pool?.take()
        let handshake: Handshake
        do {
            handshake = try Handshake(role: role, keys: settings.keys, options: settings.handshake,
                                      backend: settings.backend, keyPair: keyPair)
        } catch {
            throw .failed(.protocolFailure(error))
        }
        if role == .server, let pool { handshake.keyPairSource = { pool.take() } }
        connection.handshake = handshake
        connection.handshakeStartedAt = MonotonicClock.nanoseconds
        connection.phase = .handshaking
    }

    /// The socket the target connection uses: encrypted with `-e`, plaintext with `-d`.
    private func targetSocket(of connection: Connection) -> FileDescriptor? {
        connection.settings.mode == .encrypt ? connection.encrypted : connection.plaintext
    }

    /// Opens a socket to the next target address that does not fail at once.
    private func connectToNextTargetAddress(_ connection: Connection) throws(ConnectionEnd) {
        let settings = connection.settings
        let encrypting = settings.mode == .encrypt
        guard let book = connection.targetBook else { throw .failed(.invalidConfiguration("no target for this connection")) }
        if encrypting { connection.encryptedPeerClosed = false } else { connection.plaintextPeerClosed = false }
        if connection.targetAddresses.isEmpty && connection.nextTargetAddress == 0 {
            connection.targetAddresses = book.current
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
            if address.isInternet { configureTCP(fd, keepAlive: settings.keepAlive) }
            if let local = settings.bindAddresses.first(where: { $0.family == address.family }) {
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
        throw .failed(.connectFailed(address: book.target.displayText, cause))
    }

    /// Connecting phase: start, or check a finished non-blocking connect.
    func continueConnecting(_ connection: Connection) throws(ConnectionEnd) {
        let encrypting = connection.settings.mode == .encrypt
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
    ///
    /// A server sends its nonce at once, as the C spiped does, so both nonces cross the network
    /// together (waiting for the client's would cost half a round trip per connection); it
    /// sends nothing keyed before the client's MAC verified.
    func continueHandshake(_ connection: Connection) throws(ConnectionEnd) {
        guard let handshake = connection.handshake, let fd = connection.encrypted else { return }
        let decrypting = connection.settings.mode == .decrypt
        try flushHandshake(handshake, to: fd, connection)
        while !handshake.isComplete && connection.encryptedReadable {
            let wanted = Self.handshakeInputByteCount - connection.handshakeBytesReceived
            guard wanted > 0 else { break }
            let destination = UnsafeMutableRawBufferPointer(rebasing: inputBuffer[0..<wanted])
            switch fd.readResult(into: destination) {
            case .failure(let errno) where errno == .wouldBlock:
                connection.encryptedReadable = false
            case .failure(let errno):
                if errno.isConnectionClosure {
                    // A client told apart from a network cut: the server hung up on our y.
                    throw decrypting ? .reset : .failed(.handshakeRefusedByServer)
                }
                throw .failed(.system(SystemError("read", errno)))
            case .success(0):
                do {
                    try handshake.receiveEndOfStream()
                } catch {
                    throw decrypting ? .failed(.protocolFailure(error)) : .failed(.handshakeRefusedByServer)
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
        if decrypting && targetSocket(of: connection) == nil {
            // -d: the peer's MAC verified, so it holds one of the keys: its key picks the
            // target; start the (non-blocking) connect now, so it progresses during our
            // exponentiation.
            let index = handshake.authenticatedKeyIndex ?? 0
            connection.targetBook = connection.settings.targets[index]
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
        connection.settings.metrics?.handshakeSucceeded(durationNanoseconds: MonotonicClock.nanoseconds &- connection.handshakeStartedAt)
        connection.handshake = nil
        connection.sealer = session.sealer
        connection.opener = session.opener
        if decrypting {
            // -d: only a peer that proved it holds the key gets a connection to the target
            // (started above); wait until it is established.
            connection.phase = .connectingTarget
        } else if connection.isPoolMember {
            poolConnectionReady(connection)
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
}
