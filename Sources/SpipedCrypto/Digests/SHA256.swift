import Glibc

/// SHA-256 (FIPS 180-4), one-shot or incremental.
///
/// `update` may be called any number of times with inputs of any size: whole 64-byte blocks are
/// compressed straight from the caller's buffer, and only a trailing partial block is copied into
/// the inline 64-byte buffer. The chaining state and that buffer live inline in the struct, so
/// neither `update` nor `finalize(into:)` allocates. The block function comes from the
/// `CryptoBackend` chosen at construction and is kept for the life of the hash.
public struct SHA256: Sendable {
    /// Bytes in a digest (256 bits).
    public static let digestByteCount = 32
    /// Bytes in one input block of the compression function.
    public static let blockByteCount = 64

    /// The backend's compression function (see `CryptoBackend.sha256Compress`).
    private let compress: @Sendable (_ state: UnsafeMutablePointer<UInt32>, _ blocks: UnsafeRawPointer, _ blockCount: Int) -> Void
    /// The chaining value H0...H7 as native integers.
    private var state: InlineArray<8, UInt32>
    /// Input bytes not yet compressed; only the first `partialByteCount` are meaningful.
    private var partialBlock: InlineArray<64, UInt8>
    /// How many bytes of `partialBlock` are in use (always 0...63 between calls).
    private var partialByteCount: Int
    /// Total message length so far, in bytes (the padding encodes it in bits, modulo 2^64).
    private var totalByteCount: UInt64

    /// Starts a new hash whose compression function comes from `backend`.
    public init(backend: CryptoBackend = .portable) {
        compress = backend.sha256Compress
        // H(0): the first 32 bits of the fractional parts of the square roots of the first
        // eight primes (FIPS 180-4 §5.3.3).
        state = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        partialBlock = InlineArray(repeating: 0)
        partialByteCount = 0
        totalByteCount = 0
    }

    /// Absorbs `bytes` into the hash.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var input = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        totalByteCount &+= UInt64(truncatingIfNeeded: remaining)

        // Top up a pending partial block first; compress it once it is full.
        if partialByteCount > 0 {
            let offset = partialByteCount
            let taken = min(SHA256.blockByteCount - offset, remaining)
            withUnsafeMutableBytes(of: &partialBlock) { block in
                (block.baseAddress! + offset).copyMemory(from: input, byteCount: taken)
            }
            partialByteCount = offset + taken
            input += taken
            remaining -= taken
            guard partialByteCount == SHA256.blockByteCount else { return }
            compressPartialBlock()
            partialByteCount = 0
        }

        // Whole blocks go straight from the caller's memory to the compression function.
        let wholeBlocks = remaining / SHA256.blockByteCount
        if wholeBlocks > 0 {
            let compress = self.compress
            let blocks = input
            withUnsafeMutableBytes(of: &state) { state in
                compress(state.baseAddress!.assumingMemoryBound(to: UInt32.self), blocks, wholeBlocks)
            }
            input += wholeBlocks * SHA256.blockByteCount
            remaining -= wholeBlocks * SHA256.blockByteCount
        }

        // Keep the tail for later.
        if remaining > 0 {
            let tail = input
            let tailCount = remaining
            withUnsafeMutableBytes(of: &partialBlock) { block in
                block.baseAddress!.copyMemory(from: tail, byteCount: tailCount)
            }
            partialByteCount = remaining
        }
    }

    /// Absorbs `bytes` into the hash.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Writes the 32-byte digest to `output` (must hold 32 bytes); the hash must not be used afterwards.
    ///
    /// The internal state and buffer are zeroed before returning, since they may hold secrets
    /// (e.g. HMAC key pads or key material being hashed).
    public mutating func finalize(into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= SHA256.digestByteCount, "SHA256.finalize: output needs 32 bytes")
        // Padding (FIPS 180-4 §5.1.1): a single 1 bit, zeros up to 56 mod 64, then the
        // message length in bits as a 64-bit big-endian integer.
        let bitLength = totalByteCount &<< 3
        let used = partialByteCount
        let needsExtraBlock = used >= SHA256.blockByteCount - 8
        withUnsafeMutableBytes(of: &partialBlock) { block in
            let base = block.baseAddress!
            base.storeBytes(of: 0x80, toByteOffset: used, as: UInt8.self)
            _ = (base + used + 1).initializeMemory(as: UInt8.self, repeating: 0, count: SHA256.blockByteCount - used - 1)
        }
        if needsExtraBlock {
            // No room for the length: compress this block, then a block of zeros and the length.
            compressPartialBlock()
            withUnsafeMutableBytes(of: &partialBlock) { block in
                _ = block.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: SHA256.blockByteCount)
            }
        }
        withUnsafeMutableBytes(of: &partialBlock) { block in
            block.storeBytes(of: bitLength.bigEndian, toByteOffset: SHA256.blockByteCount - 8, as: UInt64.self)
        }
        compressPartialBlock()

        // The digest is H0...H7, each big-endian.
        withUnsafeBytes(of: &state) { words in
            for index in 0..<8 {
                let word = words.load(fromByteOffset: index * 4, as: UInt32.self)
                output.storeBytes(of: word.bigEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        wipe()
    }

    /// Returns the 32-byte digest; the hash must not be used afterwards.
    public mutating func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: SHA256.digestByteCount) { buffer, initializedCount in
            finalize(into: UnsafeMutableRawBufferPointer(buffer))
            initializedCount = SHA256.digestByteCount
        }
    }

    /// The SHA-256 digest of `bytes`, computed with `backend`.
    public static func hash(_ bytes: [UInt8], backend: CryptoBackend = .portable) -> [UInt8] {
        var hash = SHA256(backend: backend)
        hash.update(bytes)
        return hash.finalize()
    }

    /// Zeroes the chaining state, the buffered input and the counters.
    mutating func wipe() {
        withUnsafeMutableBytes(of: &state) { SHA256.zeroize($0) }
        withUnsafeMutableBytes(of: &partialBlock) { SHA256.zeroize($0) }
        partialByteCount = 0
        totalByteCount = 0
    }

    /// Compresses the (full) buffered block into the state.
    private mutating func compressPartialBlock() {
        let compress = self.compress
        withUnsafeMutableBytes(of: &state) { state in
            withUnsafeBytes(of: &partialBlock) { block in
                compress(state.baseAddress!.assumingMemoryBound(to: UInt32.self), block.baseAddress!, 1)
            }
        }
    }

    /// Overwrites `buffer` with zeros in a way the optimizer may not remove (glibc's
    /// `explicit_bzero`). Used by the digest, MAC and KDF code for their own intermediate
    /// secrets; stands in until `SecureWipe` is available.
    static func zeroize(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        explicit_bzero(base, buffer.count)
    }
}
