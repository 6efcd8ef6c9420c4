import SpipedCrypto

/// A Diffie-Hellman key pair made ahead of time (used once, so forward secrecy is kept).
///
/// Computing y = 2^x mod p is the expensive half of the handshake's arithmetic; making pairs
/// before a connection needs one keeps it off the critical path (the proxy keeps a small pool).
/// Hand each pair to exactly one `Handshake`: reusing a pair would link sessions.
public struct DHKeyPair: Sendable {
    /// The secret exponent x (wiped when released).
    public let privateExponent: DHPrivateExponent
    /// y = 2^x mod p, 256 bytes big-endian: what this side sends.
    public let publicValue: [UInt8]

    /// Generates a fresh pair from kernel randomness, with x = 2^258 + r for 256 random bits r
    /// (the reference's exponent form).
    public static func generate() throws(SpipedProtocolError) -> DHKeyPair {
        // 33 bytes big-endian: 0x04 in the top byte is bit 258; the 32 bytes after it are r.
        var random: [UInt8]
        do {
            random = try SystemRandom.bytes(32)
        } catch {
            throw .randomnessUnavailable
        }
        var exponentBytes = [0x04] + random
        SecureWipe.wipe(&random)
        let exponent = DHPrivateExponent(bigEndianBytes: exponentBytes)
        SecureWipe.wipe(&exponentBytes)
        return DHKeyPair(privateExponent: exponent)
    }

    /// A pair from a given exponent (tests inject fixed exponents); computes y = 2^x mod p now.
    public init(privateExponent: DHPrivateExponent) {
        self.privateExponent = privateExponent
        self.publicValue = privateExponent.publicValue()
    }
}
