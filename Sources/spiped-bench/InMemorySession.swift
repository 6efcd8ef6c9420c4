import SpipedCrypto
import SpipedProtocol

/// A spiped session between a client and a server `Handshake` run entirely in memory:
/// the bytes each side queues are fed straight to the other until both have their keys.
struct InMemorySession {
    /// Seals the client's packets (client → server direction).
    let clientSealer: PacketSealer
    /// Opens the packets `clientSealer` produces, on the server side.
    let serverOpener: PacketOpener

    /// The fixed key-file contents both sides use (the benchmark needs no secret).
    static let keyFileContents: [UInt8] = Array(0..<32)

    /// Runs a full client/server handshake (nonces, authenticated Diffie-Hellman, key
    /// derivation) and returns the client→server half of the resulting session.
    static func establish(backend: CryptoBackend) throws(SpipedProtocolError) -> InMemorySession {
        let (client, server) = try handshakePair(backend: backend)
        try completeHandshake(client: client, server: server)
        guard let clientSession = client.makeSession(), let serverSession = server.makeSession() else {
            // Both handshakes reported completion, so a missing session is a protocol-core bug.
            fatalError("handshake completed without a session")
        }
        return InMemorySession(clientSealer: clientSession.sealer, serverOpener: serverSession.opener)
    }

    /// Creates a client and a server handshake sharing one key.
    static func handshakePair(backend: CryptoBackend) throws(SpipedProtocolError) -> (client: Handshake, server: Handshake) {
        let key = SpipedKey(fileContents: keyFileContents, backend: backend)
        let client = try Handshake(role: .client, key: key, options: HandshakeOptions(), backend: backend)
        let server = try Handshake(role: .server, key: key, options: HandshakeOptions(), backend: backend)
        return (client, server)
    }

    /// Moves bytes back and forth until both sides are complete and have nothing left to send.
    static func completeHandshake(client: Handshake, server: Handshake) throws(SpipedProtocolError) {
        // The handshake needs three exchanges (nonces, client DH, server DH); a generous bound
        // turns a stalled state machine into a clear failure instead of a hang.
        for _ in 0..<16 {
            let clientMoved = try deliver(from: client, to: server)
            let serverMoved = try deliver(from: server, to: client)
            if client.isComplete && server.isComplete && client.pendingOutput.isEmpty && server.pendingOutput.isEmpty {
                return
            }
            if !clientMoved && !serverMoved { break }
        }
        fatalError("in-memory handshake made no progress")
    }

    /// Feeds what `sender` has queued to `receiver`; returns true when any byte moved.
    private static func deliver(from sender: Handshake, to receiver: Handshake) throws(SpipedProtocolError) -> Bool {
        let queued = sender.pendingOutput
        guard !queued.isEmpty else { return false }
        let consumed = try receiver.receive(queued)
        sender.consumeOutput(consumed)
        return consumed > 0
    }
}
