// TEMPORARY API SURFACE of the protocol core — the protocol helper replaces these with the
// real implementation (same public names and signatures unless agreed). Nothing here is done.
import SpipedCrypto

/// Every way the spiped protocol core can fail. Any error leaves the object that threw it in a
/// terminal state: every later call throws again.
public enum SpipedProtocolError: Error, Equatable, Sendable {
    /// The key file does not exist (path).
    case keyFileNotFound(path: String)
    /// The key file could not be read (path, errno).
    case keyFileUnreadable(path: String, errno: Int32)
    /// The peer's handshake MAC did not verify: it uses a different key (or the bytes were altered).
    case handshakeAuthenticationFailed
    /// The peer's Diffie-Hellman value was refused.
    case publicValueRejected(DHPublicValueProblem)
    /// We require forward secrecy (-g) and the peer sent y = 1 (it runs with -f).
    case forwardSecrecyRequired
    /// The stream ended in the middle of a handshake message or a packet.
    case truncated
    /// A packet's MAC did not verify (tampered, replayed, reordered, dropped or wrong key).
    case packetAuthenticationFailed
    /// A verified packet carried a length field of 0 or more than 1024.
    case invalidPacketLength(UInt32)
    /// 2^64 packets were sent or received in one direction.
    case packetCounterExhausted
    /// The kernel could not supply randomness.
    case randomnessUnavailable
    /// A call was made on an object that already failed.
    case alreadyFailed
}

/// A warning about a key file that still loaded.
public enum KeyFileWarning: Equatable, Sendable {
    /// The file holds fewer than 32 bytes (byte count).
    case shortKeyFile(byteCount: Int)
    /// The file can be read or written by users other than its owner (mode bits).
    case readableByOthers(mode: UInt32)
}

/// The shared secret K = SHA256(key file contents).
public struct SpipedKey: Sendable {
    /// Loads a key file (`-` reads standard input). Returns the key and warnings to show.
    public static func load(path: String, backend: CryptoBackend = .portable) throws(SpipedProtocolError) -> (key: SpipedKey, warnings: [KeyFileWarning]) { fatalError("stub") }
    /// A key from raw key-file contents.
    public init(fileContents: [UInt8], backend: CryptoBackend = .portable) { fatalError("stub") }
}

/// Which end of the pipe: the client connects (`spiped -e`, `spipe`), the server accepts (`-d`).
public enum HandshakeRole: Sendable { case client, server }

/// Handshake options.
public struct HandshakeOptions: Sendable, Equatable {
    /// `-f`: send y = 1 and skip Diffie-Hellman (no forward secrecy).
    public var fast: Bool
    /// `-g`: refuse a peer that sends y = 1.
    public var requireForwardSecrecy: Bool
    public init(fast: Bool = false, requireForwardSecrecy: Bool = false) { fatalError("stub") }
}

/// A Diffie-Hellman key pair made ahead of time (used once, so forward secrecy is kept).
public struct DHKeyPair: Sendable {
    /// Generates a fresh pair from kernel randomness.
    public static func generate() throws(SpipedProtocolError) -> DHKeyPair { fatalError("stub") }
}

/// The sans-I/O handshake. Feed it received bytes in any chunking; write out `pendingOutput`.
///
/// When `isComplete` becomes true, `pendingOutput` may still hold the final handshake message:
/// send it before any packet. `receive` stops consuming at the end of the handshake; the rest
/// of the input belongs to the packet stream.
public final class Handshake {
    /// Starts a handshake; the nonce is queued for sending at once.
    /// `nonce` and `keyPair` are injectable for tests; by default they come from the kernel.
    public init(role: HandshakeRole, key: SpipedKey, options: HandshakeOptions, backend: CryptoBackend = .portable,
                nonce: [UInt8]? = nil, keyPair: DHKeyPair? = nil) throws(SpipedProtocolError) { fatalError("stub") }
    /// Bytes waiting to be sent to the peer.
    public var pendingOutput: UnsafeRawBufferPointer { fatalError("stub") }
    /// Marks `count` bytes of `pendingOutput` as sent.
    public func consumeOutput(_ count: Int) { fatalError("stub") }
    /// Feeds received bytes; returns how many were consumed.
    public func receive(_ bytes: UnsafeRawBufferPointer) throws(SpipedProtocolError) -> Int { fatalError("stub") }
    /// The peer closed its side; throws `.truncated` unless the handshake completed.
    public func receiveEndOfStream() throws(SpipedProtocolError) { fatalError("stub") }
    /// True once both sides' keys are known.
    public var isComplete: Bool { fatalError("stub") }
    /// The packet layer for this session, once complete (call once).
    public func makeSession() -> (sealer: PacketSealer, opener: PacketOpener)? { fatalError("stub") }
}

/// Turns plaintext into 1060-byte spiped packets for one direction.
public final class PacketSealer {
    /// Size of one packet on the wire.
    public static let packetByteCount = 1060
    /// Largest payload of one packet.
    public static let maximumPayloadByteCount = 1024
    /// Seals as much of `plaintext` as fits into whole packets in `output` (each packet carries
    /// up to 1024 bytes). Returns plaintext bytes consumed and ciphertext bytes written.
    public func seal(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(SpipedProtocolError) -> (consumed: Int, produced: Int) { fatalError("stub") }
}

/// Verifies and decrypts 1060-byte packets of one direction, from input in any chunking.
public final class PacketOpener {
    /// Consumes ciphertext and writes verified plaintext to `output` (which must have room for at
    /// least 1024 bytes). Returns ciphertext consumed and plaintext written; it stops early when
    /// `output` has no room for another packet's payload.
    public func open(_ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(SpipedProtocolError) -> (consumed: Int, produced: Int) { fatalError("stub") }
    /// The peer closed its side: throws `.truncated` if a partial packet is buffered.
    public func receiveEndOfStream() throws(SpipedProtocolError) { fatalError("stub") }
}
