import SpipedCrypto

/// Every way the spiped protocol core can fail. Any error leaves the object that threw it in a
/// terminal state: every later call throws `.alreadyFailed`.
public enum SpipedProtocolError: Error, Equatable, Sendable {
    /// The key file does not exist (path).
    case keyFileNotFound(path: String)
    /// The key file could not be read (path, errno).
    case keyFileUnreadable(path: String, errno: Int32)
    /// The key file holds more than `maximumByteCount` bytes (path, the limit).
    case keyFileTooLarge(path: String, maximumByteCount: Int)
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
