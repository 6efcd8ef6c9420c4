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
