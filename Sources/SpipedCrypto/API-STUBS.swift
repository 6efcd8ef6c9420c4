// TEMPORARY API SURFACE — each helper replaces the declarations it owns with a real
// implementation in its own files and deletes them from here. Nothing here is done.

/// Errors from the crypto library.
public enum CryptoError: Error, Equatable, Sendable {
    /// A key had the wrong length (expected, got).
    case invalidKeyLength(expected: Int, actual: Int)
    /// An argument was outside its allowed range (e.g. zero PBKDF2 iterations, HKDF output too long).
    case invalidParameter
    /// The kernel could not provide randomness (errno value); never falls back.
    case randomnessUnavailable(errno: Int32)
    /// A peer's Diffie-Hellman public value is not acceptable.
    case invalidPublicValue(DHPublicValueProblem)
}

/// Why a Diffie-Hellman public value was refused.
public enum DHPublicValueProblem: Error, Equatable, Sendable {
    /// The value was not exactly 256 bytes.
    case wrongLength
    /// y >= p.
    case notLessThanPrime
    /// y == 0.
    case zero
    /// y == p - 1 (order-2 element).
    case primeMinusOne
    /// y == 1 while forward secrecy is required.
    case one
}

// ---- Key agreement (helper: dh) ----
/// Diffie-Hellman over the RFC 3526 2048-bit MODP group 14, generator 2.
public enum DiffieHellmanGroup14 {
    public static let valueByteCount = 256
    /// The group prime p, 256 bytes big-endian.
    public static var primeBytes: [UInt8] { fatalError("stub") }
}
/// A private exponent (kept secret, wiped on release). Entropy: 256 random bits.
public final class DHPrivateExponent: @unchecked Sendable {
    /// Draws 32 random bytes from the kernel.
    public convenience init() throws(CryptoError) { fatalError("stub") }
    /// Uses the given big-endian exponent bytes (tests inject fixed exponents; 1...256 bytes).
    public init(bigEndianBytes: [UInt8]) { fatalError("stub") }
    /// 2^x mod p, 256 bytes big-endian (base-2 fast path).
    public func publicValue() -> [UInt8] { fatalError("stub") }
    /// peer^x mod p, 256 bytes big-endian, after validating `peer`.
    public func sharedSecret(peerPublicValue: [UInt8], requireForwardSecrecy: Bool) throws(CryptoError) -> [UInt8] { fatalError("stub") }
}
extension DiffieHellmanGroup14 {
    /// Checks a peer's public value: 256 bytes, 0 < y < p-1, and y != 1 when forward secrecy is required.
    public static func validatePeerValue(_ y: [UInt8], requireForwardSecrecy: Bool) throws(CryptoError) { fatalError("stub") }
    /// General modular exponentiation base^exponent mod p (fixed window, constant-time selection), 256-byte result.
    public static func modPow(base: [UInt8], exponent: [UInt8]) -> [UInt8] { fatalError("stub") }
}

// ---- Support (helper: dh) ----
public enum ConstantTime {
    /// True when the buffers are equal; time depends only on the length.
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool { fatalError("stub") }
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool { fatalError("stub") }
}
public enum SecureWipe {
    /// Overwrites the bytes with zeros in a way the optimizer does not remove.
    public static func wipe(_ buffer: UnsafeMutableRawBufferPointer) { fatalError("stub") }
    public static func wipe(_ bytes: inout [UInt8]) { fatalError("stub") }
}
public enum SystemRandom {
    /// Fills the buffer from getrandom(2), retrying on EINTR and short reads; throws if the kernel cannot.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(CryptoError) { fatalError("stub") }
    public static func bytes(_ count: Int) throws(CryptoError) -> [UInt8] { fatalError("stub") }
}
