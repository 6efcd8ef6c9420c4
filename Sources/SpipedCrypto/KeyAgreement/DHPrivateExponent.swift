/// A private exponent (kept secret, wiped on release). Entropy: 256 random bits.
///
/// The exponent's big-endian bytes live in one allocation owned by this object and are wiped
/// with `SecureWipe` in `deinit`; they are never copied into an array. Immutable after
/// creation, hence safe to share between threads.
public final class DHPrivateExponent: @unchecked Sendable {
    /// Big-endian exponent bytes (1...256 of them), wiped on deinit.
    private let storage: UnsafeMutableRawBufferPointer

    /// Bytes drawn from the kernel by `init()`: 256 bits, as spiped needs at least that much entropy.
    public static let randomByteCount = 32

    /// Draws 32 random bytes from the kernel.
    public convenience init() throws(CryptoError) {
        let storage = UnsafeMutableRawBufferPointer.allocate(
            byteCount: DHPrivateExponent.randomByteCount, alignment: 8)
        do {
            try SystemRandom.fill(storage)
        } catch {
            SecureWipe.wipe(storage)
            storage.deallocate()
            throw error
        }
        self.init(takingOwnershipOf: storage)
    }

    /// Uses the given big-endian exponent bytes (tests inject fixed exponents; 1...256 bytes).
    public init(bigEndianBytes: [UInt8]) {
        precondition((1...256).contains(bigEndianBytes.count), "exponent must be 1...256 bytes")
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bigEndianBytes.count, alignment: 8)
        storage.copyBytes(from: bigEndianBytes)
    }

    /// Adopts an allocated, filled buffer; `deinit` wipes and frees it.
    private init(takingOwnershipOf storage: UnsafeMutableRawBufferPointer) {
        self.storage = storage
    }

    deinit {
        SecureWipe.wipe(storage)
        storage.deallocate()
    }

    /// 2^x mod p, 256 bytes big-endian (base-2 fast paths: the fixed-base comb for 32-byte
    /// exponents, else one squaring and one masked doubling per bit).
    ///
    /// Constant time in x. `backend` supplies the Montgomery multiplication (portable by default).
    public func publicValue(backend: CryptoBackend = .portable) -> [UInt8] {
        DiffieHellmanGroup14.powerOfTwo(exponent: UnsafeRawBufferPointer(storage), backend: backend)
    }

    /// peer^x mod p, 256 bytes big-endian, after validating `peer`.
    ///
    /// Validation (`DiffieHellmanGroup14.validatePeerValue`) looks only at the public peer
    /// value and may branch; the exponentiation is constant time in x and in the peer value.
    /// A peer using spiped's -f sends y = 1; unless forward secrecy is required that is
    /// accepted and gives 1, which is what the peer computes too. `backend` supplies the
    /// Montgomery multiplication (portable by default).
    public func sharedSecret(peerPublicValue: [UInt8], requireForwardSecrecy: Bool,
                             backend: CryptoBackend = .portable) throws(CryptoError) -> [UInt8] {
        try DiffieHellmanGroup14.validatePeerValue(peerPublicValue, requireForwardSecrecy: requireForwardSecrecy)
        return peerPublicValue.withUnsafeBytes { peer in
            DiffieHellmanGroup14.power(base: peer, exponent: UnsafeRawBufferPointer(storage), backend: backend)
        }
    }
}
