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

    /// Generates a fresh pair from kernel randomness: x is 256 random bits (full entropy).
    ///
    /// The reference uses x = 2^258 + r with the same 256 random bits r; any exponent with 256
    /// bits of entropy interoperates, and a 32-byte exponent takes the crypto library's
    /// fixed-base comb for 2^x, several times faster than the bit-by-bit path.
    /// `backend` supplies the Montgomery multiplication (its `montgomery2048` engine).
    public static func generate(backend: CryptoBackend = .portable) throws(SpipedProtocolError) -> DHKeyPair {
        let exponent: DHPrivateExponent
        do {
            exponent = try DHPrivateExponent()
        } catch {
            throw .randomnessUnavailable
        }
        return DHKeyPair(privateExponent: exponent, backend: backend)
    }

    /// A pair from a given exponent (tests inject fixed exponents); computes y = 2^x mod p now.
    public init(privateExponent: DHPrivateExponent, backend: CryptoBackend = .portable) {
        self.privateExponent = privateExponent
        self.publicValue = privateExponent.publicValue(backend: backend)
    }
}
