/// Diffie-Hellman over the RFC 3526 2048-bit MODP group 14, generator 2.
///
/// The group spiped uses for its handshake: public values are exactly 256 big-endian bytes.
/// Arithmetic lives in `Montgomery2048`; this type holds the group's constants, the
/// public-value check and general exponentiation.
public enum DiffieHellmanGroup14 {
    /// Bytes in a public value, a shared secret and the prime (2048 bits).
    public static let valueByteCount = 256

    /// The group prime p, 256 bytes big-endian.
    public static var primeBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: valueByteCount)
        Montgomery2048.modulusLimbs.withUnsafeBufferPointer { limbs in
            bytes.withUnsafeMutableBytes { Montgomery2048.storeBigEndian(limbs.baseAddress!, into: $0) }
        }
        return bytes
    }

    /// p - 1, 256 bytes big-endian (p is odd, so only the last byte changes).
    static let primeMinusOneBytes: [UInt8] = {
        var bytes = primeBytes
        bytes[valueByteCount - 1] -= 1
        return bytes
    }()

    /// The big-endian prime, kept for comparisons.
    private static let primeBigEndian: [UInt8] = primeBytes
}

extension DiffieHellmanGroup14 {
    /// Checks a peer's public value: 256 bytes, 0 < y < p-1, and y != 1 when forward secrecy is required.
    ///
    /// Checked in this order, each failure thrown as `CryptoError.invalidPublicValue`:
    /// length (`wrongLength`), y ≥ p (`notLessThanPrime`), y = 0 (`zero`), y = p - 1
    /// (`primeMinusOne`), and y = 1 when `requireForwardSecrecy` (`one`; a peer running
    /// spiped with -f sends 1). Not constant time: it compares public values and may branch.
    public static func validatePeerValue(_ y: [UInt8], requireForwardSecrecy: Bool) throws(CryptoError) {
        guard y.count == valueByteCount else { throw .invalidPublicValue(.wrongLength) }
        // Both are 256 bytes big-endian, so lexicographic order is numeric order.
        guard y.lexicographicallyPrecedes(primeBigEndian) else { throw .invalidPublicValue(.notLessThanPrime) }
        let leadingZeroCount = y.prefix(while: { $0 == 0 }).count
        if leadingZeroCount == valueByteCount { throw .invalidPublicValue(.zero) }
        if y == primeMinusOneBytes { throw .invalidPublicValue(.primeMinusOne) }
        if requireForwardSecrecy && leadingZeroCount == valueByteCount - 1 && y[valueByteCount - 1] == 1 {
            throw .invalidPublicValue(.one)
        }
    }

    /// General modular exponentiation base^exponent mod p (fixed window, constant-time selection), 256-byte result.
    ///
    /// `base`: big-endian, at most 256 bytes, any value below 2^2048 (values ≥ p are reduced).
    /// `exponent`: big-endian, any length; empty or zero gives 1. Time depends only on the
    /// exponent's byte length (see `Montgomery2048.power`). Not a validation: use
    /// `validatePeerValue` first for values received from a peer. `backend` supplies the
    /// Montgomery multiplication (its `montgomery2048` engine, portable when nil).
    public static func modPow(base: [UInt8], exponent: [UInt8], backend: CryptoBackend = .portable) -> [UInt8] {
        precondition(base.count <= valueByteCount, "base longer than 256 bytes")
        return exponent.withUnsafeBytes { exponentBytes in
            base.withUnsafeBytes { baseBytes in power(base: baseBytes, exponent: exponentBytes, backend: backend) }
        }
    }

    /// base^exponent mod p from raw big-endian buffers; the scratch copy of the base is wiped.
    static func power(base: UnsafeRawBufferPointer, exponent: UnsafeRawBufferPointer, backend: CryptoBackend) -> [UInt8] {
        let limbs = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * Montgomery2048.limbCount)
        defer {
            SecureWipe.wipe(limbs, count: 2 * Montgomery2048.limbCount)
            limbs.deallocate()
        }
        let baseLimbs = limbs, resultLimbs = limbs + Montgomery2048.limbCount
        Montgomery2048.loadLimbs(baseLimbs, bigEndian: base)
        Montgomery2048.power(resultLimbs, base: baseLimbs, exponent: exponent, engine: backend.montgomery2048)
        return bigEndianBytes(resultLimbs)
    }

    /// 2^exponent mod p from a raw big-endian exponent (the base-2 fast paths).
    static func powerOfTwo(exponent: UnsafeRawBufferPointer, backend: CryptoBackend) -> [UInt8] {
        let resultLimbs = UnsafeMutablePointer<UInt64>.allocate(capacity: Montgomery2048.limbCount)
        defer {
            SecureWipe.wipe(resultLimbs, count: Montgomery2048.limbCount)
            resultLimbs.deallocate()
        }
        if exponent.count == Montgomery2048.combExponentByteCount {
            // The length is public: 32-byte exponents (all of `DHPrivateExponent()`'s) use the
            // precomputed comb, other lengths the bit-by-bit square-and-double.
            Montgomery2048.powerOfTwoComb(resultLimbs, exponent: exponent, engine: backend.montgomery2048)
        } else {
            Montgomery2048.powerOfTwo(resultLimbs, exponent: exponent, engine: backend.montgomery2048)
        }
        return bigEndianBytes(resultLimbs)
    }

    /// 256 big-endian bytes of a 32-limb value.
    private static func bigEndianBytes(_ limbs: UnsafePointer<UInt64>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: valueByteCount) { buffer, initializedCount in
            Montgomery2048.storeBigEndian(limbs, into: UnsafeMutableRawBufferPointer(buffer))
            initializedCount = valueByteCount
        }
    }
}
