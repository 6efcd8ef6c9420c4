import SpipedProtocol
import SpipedSystem

/// The data pump: plaintext is sealed into packets one way, packets are verified and opened
/// the other way, in large batches through the loop's shared buffers, with backpressure (a
/// side is not read while the other side has unwritten output). Runs on the owning loop.
extension EventLoop {
    /// Piping phase: both directions, then close when both have ended.
    /// Counts payload bytes for the connection's end-of-life line and the pipe's metrics:
    /// plaintext read on an encrypt pipe goes towards the target, on a decrypt pipe back from it.
    @inline(never)
    private func countBytes(_ count: Int, of connection: Connection, fromPlaintextSide: Bool) {
        let towardsTarget = (connection.settings.mode == .encrypt) == fromPlaintextSide
        if towardsTarget {
            connection.bytesSourceToTarget += count
        } else {
            connection.bytesTargetToSource += count
        }
        connection.settings.metrics?.addBytes(count, direction: towardsTarget ? .sourceToTarget : .targetToSource)
    }

    func pump(_ connection: Connection) throws(ConnectionEnd) {
        try pumpPlaintextToEncrypted(connection)
        try pumpEncryptedToPlaintext(connection)
        if connection.encryptedInputTruncated {
            // Deliver every verified packet first, then reset the plaintext side.
            if connection.pendingToPlaintext == nil {
                close(connection, end: .failed(.truncatedStream), resettingPlaintext: true)
            }
            return
        }
        if connection.plaintextInputEnded && connection.encryptedInputEnded
            && connection.pendingToEncrypted == nil && connection.pendingToPlaintext == nil {
            close(connection, end: nil)
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
                countBytes(count, of: connection, fromPlaintextSide: true)
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
                connection.encryptedInputEnded = true
                do {
                    try opener.receiveEndOfStream()
                } catch {
                    // A partial packet at end of stream: the stream was cut. Not a FIN for the
                    // plaintext side (it would look complete): `pump` resets it once the
                    // verified packets before the cut are written.
                    connection.encryptedInputTruncated = true
                    return
                }
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
                        countBytes(opened.produced, of: connection, fromPlaintextSide: false)
                        try write(UnsafeRawBufferPointer(rebasing: outputBuffer[0..<opened.produced]), to: destination,
                                  pending: &connection.pendingToPlaintext, writable: &connection.plaintextWritable)
                    }
                    if opened.consumed == 0 && opened.produced == 0 { break }
                }
            }
        }
    }

}
