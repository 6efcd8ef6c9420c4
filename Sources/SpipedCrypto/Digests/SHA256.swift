/// SHA-256 (FIPS 180-4), one-shot or incremental.
///
/// `update` may be called any number of times with inputs of any size: whole 64-byte blocks are
/// compressed straight from the caller's buffer, and only a trailing partial block is copied into
/// the inline 64-byte buffer. The chaining state and that buffer live inline in the struct, so
/// neither `update` nor `finalize(into:)` allocates. The block function comes from the
/// `CryptoBackend` chosen at construction and is kept for the life of the hash as a plain
/// function pointer, so a `SHA256` holds no references: copying one (an HMAC keyed state per
/// message) is a memory copy, with no retain or release.
public struct SHA256: Sendable {
    /// Bytes in a digest (256 bits).
    public static let digestByteCount = 32
    /// Bytes in one input block of the compression function.
    public static let blockByteCount = 64

    /// The backend's compression function (see `CryptoBackend.sha256Compress`).
    fileprivate let compress: CryptoBackend.SHA256CompressFunction
    /// The backend's two-stream compression function (see `CryptoBackend.sha256Compress2`),
    /// used by the two-hash `update` and `finalize`; nil means two `compress` calls.
    fileprivate let compress2: CryptoBackend.SHA256Compress2Function?
    /// The backend's multi-stream compression (see `CryptoBackend.sha256CompressMany`), used by
    /// the batch `update` and `finalize`; nil means pairs and singles.
    fileprivate let compressMany: CryptoBackend.SHA256CompressManyFunction?
    /// How many streams `compressMany` takes at most (0 when it is nil).
    fileprivate let lanes: Int
    /// The chaining value H0...H7 as native integers.
    fileprivate var state: InlineArray<8, UInt32>
    /// Input bytes not yet compressed; only the first `partialByteCount` are meaningful.
    fileprivate var partialBlock: InlineArray<64, UInt8>
    /// How many bytes of `partialBlock` are in use (always 0...63 between calls).
    fileprivate var partialByteCount: Int
    /// Total message length so far, in bytes (the padding encodes it in bits, modulo 2^64).
    fileprivate var totalByteCount: UInt64

    /// Starts a new hash whose compression function comes from `backend`.
    public init(backend: CryptoBackend = .portable) {
        compress = backend.sha256Compress
        compress2 = backend.sha256Compress2
        compressMany = backend.sha256CompressMany
        lanes = backend.sha256Lanes
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
            guard topUpPartialBlock(&input, &remaining) else { return }
            compressPartialBlock()
            partialByteCount = 0
        }

        // Whole blocks go straight from the caller's memory to the compression function.
        compressWholeBlocks(&input, &remaining)
        keepTail(input, remaining)
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
        if padPartialBlock() {
            // No room for the length: compress this block, then a block of zeros and the length.
            compressPartialBlock()
            clearPartialBlock()
        }
        appendBitLength()
        compressPartialBlock()
        writeDigest(to: output)
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
        withUnsafeMutableBytes(of: &state) { SecureWipe.wipe($0) }
        withUnsafeMutableBytes(of: &partialBlock) { SecureWipe.wipe($0) }
        partialByteCount = 0
        totalByteCount = 0
    }

    /// Compresses the (full) buffered block into the state.
    fileprivate mutating func compressPartialBlock() {
        let compress = self.compress
        withUnsafeMutableBytes(of: &state) { state in
            withUnsafeBytes(of: &partialBlock) { block in
                compress(state.baseAddress!.assumingMemoryBound(to: UInt32.self), block.baseAddress!, 1)
            }
        }
    }

    /// Moves up to `64 - partialByteCount` bytes from `input` into the partial block, advancing
    /// `input` and `remaining`. Returns true when the partial block is now full (the caller
    /// compresses it and resets `partialByteCount`).
    fileprivate mutating func topUpPartialBlock(_ input: inout UnsafeRawPointer, _ remaining: inout Int) -> Bool {
        let offset = partialByteCount
        let taken = min(SHA256.blockByteCount - offset, remaining)
        let source = input
        withUnsafeMutableBytes(of: &partialBlock) { block in
            (block.baseAddress! + offset).copyMemory(from: source, byteCount: taken)
        }
        partialByteCount = offset + taken
        input += taken
        remaining -= taken
        return partialByteCount == SHA256.blockByteCount
    }

    /// Keeps the last `count` (0...63) input bytes at `tail` in the (empty) partial block.
    fileprivate mutating func keepTail(_ tail: UnsafeRawPointer, _ count: Int) {
        guard count > 0 else { return }
        withUnsafeMutableBytes(of: &partialBlock) { block in
            block.baseAddress!.copyMemory(from: tail, byteCount: count)
        }
        partialByteCount = count
    }

    /// Padding, first part (FIPS 180-4 §5.1.1): appends the single 1 bit and zero-fills the rest
    /// of the partial block. Returns true when the 8-byte length no longer fits in this block,
    /// i.e. the message needs an extra final block (compress this one, then `clearPartialBlock`).
    fileprivate mutating func padPartialBlock() -> Bool {
        let used = partialByteCount
        withUnsafeMutableBytes(of: &partialBlock) { block in
            let base = block.baseAddress!
            base.storeBytes(of: 0x80, toByteOffset: used, as: UInt8.self)
            _ = (base + used + 1).initializeMemory(as: UInt8.self, repeating: 0, count: SHA256.blockByteCount - used - 1)
        }
        return used >= SHA256.blockByteCount - 8
    }

    /// Zeroes the partial block (the extra final block starts as all zeros).
    fileprivate mutating func clearPartialBlock() {
        withUnsafeMutableBytes(of: &partialBlock) { block in
            _ = block.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: SHA256.blockByteCount)
        }
    }

    /// Padding, last part: the message length in bits, modulo 2^64, as a big-endian 64-bit
    /// integer in the final 8 bytes of the partial block.
    fileprivate mutating func appendBitLength() {
        let bitLength = totalByteCount &<< 3
        withUnsafeMutableBytes(of: &partialBlock) { block in
            block.storeBytes(of: bitLength.bigEndian, toByteOffset: SHA256.blockByteCount - 8, as: UInt64.self)
        }
    }

    /// Writes the digest H0...H7, each big-endian, to `output` (32 bytes).
    fileprivate mutating func writeDigest(to output: UnsafeMutableRawBufferPointer) {
        withUnsafeBytes(of: &state) { words in
            for index in 0..<8 {
                let word = words.load(fromByteOffset: index * 4, as: UInt32.self)
                output.storeBytes(of: word.bigEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
    }
}

// MARK: - Two hashes at once

extension SHA256 {
    /// Absorbs `bytesA` into `a` and `bytesB` into `b`: the same result as `a.update(bytesA)`
    /// followed by `b.update(bytesB)`.
    ///
    /// Blocks that both hashes complete in this call are compressed in pairs by the two-stream
    /// compression of `a`'s backend (`CryptoBackend.sha256Compress2`), which on SHA-NI runs the
    /// two streams interleaved at up to twice the speed of one; blocks without a partner are
    /// compressed one hash at a time. Pairing is complete when both hashes hold the same number
    /// of buffered bytes and the inputs have equal lengths, e.g. two equal-length messages after
    /// the same prefix (an HMAC keyed state).
    public static func update(_ a: inout SHA256, _ bytesA: UnsafeRawBufferPointer,
                              _ b: inout SHA256, _ bytesB: UnsafeRawBufferPointer) {
        guard var inputA = bytesA.baseAddress, bytesA.count > 0,
              var inputB = bytesB.baseAddress, bytesB.count > 0 else {
            // Nothing to pair with: one of the inputs is empty.
            a.update(bytesA)
            b.update(bytesB)
            return
        }
        var remainingA = bytesA.count, remainingB = bytesB.count
        a.totalByteCount &+= UInt64(truncatingIfNeeded: remainingA)
        b.totalByteCount &+= UInt64(truncatingIfNeeded: remainingB)

        // Pending partial blocks first (each hash's blocks stay in order): topped-up blocks are
        // compressed together when both fill up, singly otherwise.
        let filledA = a.partialByteCount > 0 && a.topUpPartialBlock(&inputA, &remainingA)
        let filledB = b.partialByteCount > 0 && b.topUpPartialBlock(&inputB, &remainingB)
        if filledA && filledB {
            compressPartialBlocks(&a, &b)
        } else if filledA {
            a.compressPartialBlock()
        } else if filledB {
            b.compressPartialBlock()
        }
        if filledA { a.partialByteCount = 0 }
        if filledB { b.partialByteCount = 0 }
        // A hash whose partial block is still not full has used up its input.

        // Whole blocks straight from the callers' memory, paired as far as both have them.
        let wholeBlocksA = a.partialByteCount == 0 ? remainingA / SHA256.blockByteCount : 0
        let wholeBlocksB = b.partialByteCount == 0 ? remainingB / SHA256.blockByteCount : 0
        let pairedBlocks = min(wholeBlocksA, wholeBlocksB)
        if pairedBlocks > 0 {
            let compress = a.compress, compress2 = a.compress2
            let blocksA = inputA, blocksB = inputB
            withUnsafeMutableBytes(of: &a.state) { stateA in
                withUnsafeMutableBytes(of: &b.state) { stateB in
                    compressPair(compress, compress2, stateA.baseAddress!.assumingMemoryBound(to: UInt32.self), blocksA,
                                 stateB.baseAddress!.assumingMemoryBound(to: UInt32.self), blocksB, pairedBlocks)
                }
            }
            inputA += pairedBlocks * SHA256.blockByteCount
            remainingA -= pairedBlocks * SHA256.blockByteCount
            inputB += pairedBlocks * SHA256.blockByteCount
            remainingB -= pairedBlocks * SHA256.blockByteCount
        }
        if a.partialByteCount == 0 {
            a.compressWholeBlocks(&inputA, &remainingA)
            a.keepTail(inputA, remainingA)
        }
        if b.partialByteCount == 0 {
            b.compressWholeBlocks(&inputB, &remainingB)
            b.keepTail(inputB, remainingB)
        }
    }

    /// Writes `a`'s digest to `outputA` and `b`'s to `outputB` (32 bytes each) and wipes both
    /// hashes: the same result as `a.finalize(into: outputA); b.finalize(into: outputB)`.
    /// The final blocks are compressed in pairs where both hashes have one (always the last).
    public static func finalize(_ a: inout SHA256, into outputA: UnsafeMutableRawBufferPointer,
                                _ b: inout SHA256, into outputB: UnsafeMutableRawBufferPointer) {
        precondition(outputA.count >= SHA256.digestByteCount && outputB.count >= SHA256.digestByteCount,
                     "SHA256.finalize: outputs need 32 bytes")
        let extraBlockA = a.padPartialBlock()
        let extraBlockB = b.padPartialBlock()
        if extraBlockA && extraBlockB {
            compressPartialBlocks(&a, &b)
        } else if extraBlockA {
            a.compressPartialBlock()
        } else if extraBlockB {
            b.compressPartialBlock()
        }
        if extraBlockA { a.clearPartialBlock() }
        if extraBlockB { b.clearPartialBlock() }
        a.appendBitLength()
        b.appendBitLength()
        compressPartialBlocks(&a, &b)
        a.writeDigest(to: outputA)
        b.writeDigest(to: outputB)
        a.wipe()
        b.wipe()
    }

    /// Compresses `a`'s and `b`'s (full) buffered blocks together.
    private static func compressPartialBlocks(_ a: inout SHA256, _ b: inout SHA256) {
        let compress = a.compress, compress2 = a.compress2
        withUnsafeMutableBytes(of: &a.state) { stateA in
            withUnsafeMutableBytes(of: &b.state) { stateB in
                withUnsafeBytes(of: &a.partialBlock) { blockA in
                    withUnsafeBytes(of: &b.partialBlock) { blockB in
                        compressPair(compress, compress2,
                                     stateA.baseAddress!.assumingMemoryBound(to: UInt32.self), blockA.baseAddress!,
                                     stateB.baseAddress!.assumingMemoryBound(to: UInt32.self), blockB.baseAddress!, 1)
                    }
                }
            }
        }
    }

    /// Two streams through a backend's functions: its two-stream compression when it has one,
    /// otherwise one-stream compression per stream.
    @inline(__always)
    private static func compressPair(_ compress: CryptoBackend.SHA256CompressFunction,
                                     _ compress2: CryptoBackend.SHA256Compress2Function?,
                                     _ stateA: UnsafeMutablePointer<UInt32>, _ blocksA: UnsafeRawPointer,
                                     _ stateB: UnsafeMutablePointer<UInt32>, _ blocksB: UnsafeRawPointer, _ blockCount: Int) {
        if let compress2 {
            compress2(stateA, blocksA, stateB, blocksB, blockCount)
        } else {
            compress(stateA, blocksA, blockCount)
            compress(stateB, blocksB, blockCount)
        }
    }

    /// Compresses the whole blocks at the start of `input`, advancing `input` and `remaining`.
    fileprivate mutating func compressWholeBlocks(_ input: inout UnsafeRawPointer, _ remaining: inout Int) {
        let wholeBlocks = remaining / SHA256.blockByteCount
        guard wholeBlocks > 0 else { return }
        let compress = self.compress
        let blocks = input
        withUnsafeMutableBytes(of: &state) { state in
            compress(state.baseAddress!.assumingMemoryBound(to: UInt32.self), blocks, wholeBlocks)
        }
        input += wholeBlocks * SHA256.blockByteCount
        remaining -= wholeBlocks * SHA256.blockByteCount
    }
}

// MARK: - Many hashes at once

extension SHA256 {
    /// Absorbs `byteCount` bytes from `inputs[i]` into `hashes[i]`, for every i: the same result
    /// as `hashes[i].update(...)` one after another (`inputs.count` must equal `hashes.count`).
    ///
    /// When every hash holds the same number of buffered bytes (e.g. copies of one HMAC keyed
    /// state fed equal-length pieces), every block is compressed in groups: `sha256Lanes`
    /// streams at a time by the multi-stream compression of the first hash's backend
    /// (`CryptoBackend.sha256CompressMany`), a smaller remainder by it too when it is at least
    /// half the width, otherwise in pairs (`sha256Compress2`) and a single. Otherwise each hash
    /// is updated on its own. All hashes should come from the same backend.
    public static func update(_ hashes: UnsafeMutableBufferPointer<SHA256>, _ inputs: UnsafeBufferPointer<UnsafeRawPointer>,
                              byteCount: Int) {
        precondition(inputs.count == hashes.count, "SHA256.update: one input per hash")
        guard let base = hashes.baseAddress else { return }
        SHA256Batch(base: UnsafeMutableRawPointer(base), stride: MemoryLayout<SHA256>.stride, count: hashes.count)
            .update(inputs.baseAddress!, byteCount: byteCount)
    }

    /// Writes `hashes[i]`'s digest to `outputs[i]` (32 bytes each) and wipes every hash: the
    /// same result as `hashes[i].finalize(into:)` one after another, with the final blocks
    /// compressed in groups as `update(_:_:byteCount:)` does (when the hashes are in step).
    public static func finalize(_ hashes: UnsafeMutableBufferPointer<SHA256>,
                                into outputs: UnsafeBufferPointer<UnsafeMutableRawPointer>) {
        precondition(outputs.count == hashes.count, "SHA256.finalize: one output per hash")
        guard let base = hashes.baseAddress else { return }
        SHA256Batch(base: UnsafeMutableRawPointer(base), stride: MemoryLayout<SHA256>.stride, count: hashes.count)
            .finalize(into: outputs.baseAddress!)
    }
}

/// `count` hashes at `base`, `stride` bytes apart (a buffer of `SHA256`, or the inner or outer
/// hashes of a buffer of `HMACSHA256`): the engine of the batch `update` and `finalize`.
struct SHA256Batch {
    /// The first hash.
    let base: UnsafeMutableRawPointer
    /// Bytes from one hash to the next.
    let stride: Int
    /// How many hashes.
    let count: Int

    /// Where the chaining value and the partial block sit inside a `SHA256` (worked out once:
    /// a key path is not free to evaluate).
    static let stateOffset = MemoryLayout<SHA256>.offset(of: \SHA256.state)!
    static let partialBlockOffset = MemoryLayout<SHA256>.offset(of: \SHA256.partialBlock)!

    /// Hash `index`.
    @inline(__always)
    func hash(_ index: Int) -> UnsafeMutablePointer<SHA256> {
        (base + index * stride).assumingMemoryBound(to: SHA256.self)
    }

    /// True when every hash has as many buffered bytes as the first (they can move in step).
    private var inStep: Bool {
        let buffered = hash(0).pointee.partialByteCount
        for index in 1..<count where hash(index).pointee.partialByteCount != buffered { return false }
        return true
    }

    /// See `SHA256.update(_:_:byteCount:)`; `inputs` holds `count` pointers.
    func update(_ inputs: UnsafePointer<UnsafeRawPointer>, byteCount: Int) {
        guard count > 0, byteCount > 0 else { return }
        guard inStep else {
            for index in 0..<count { hash(index).pointee.update(UnsafeRawBufferPointer(start: inputs[index], count: byteCount)) }
            return
        }
        var offset = 0
        let buffered = hash(0).pointee.partialByteCount
        for index in 0..<count { hash(index).pointee.totalByteCount &+= UInt64(truncatingIfNeeded: byteCount) }
        if buffered > 0 {
            // Top up the partial blocks; compress them together once they are full.
            let taken = min(SHA256.blockByteCount - buffered, byteCount)
            for index in 0..<count { copyIntoPartialBlock(index, at: buffered, from: inputs[index], count: taken) }
            offset = taken
            guard buffered + taken == SHA256.blockByteCount else {
                for index in 0..<count { hash(index).pointee.partialByteCount = buffered + taken }
                return
            }
            compressPartialBlocks()
            for index in 0..<count { hash(index).pointee.partialByteCount = 0 }
        }
        // Whole blocks straight from the callers' memory.
        let wholeBlocks = (byteCount - offset) / SHA256.blockByteCount
        if wholeBlocks > 0 {
            compress(blockCount: wholeBlocks) { inputs[$0] + offset }
            offset += wholeBlocks * SHA256.blockByteCount
        }
        let tail = byteCount - offset
        if tail > 0 {
            for index in 0..<count {
                copyIntoPartialBlock(index, at: 0, from: inputs[index] + offset, count: tail)
                hash(index).pointee.partialByteCount = tail
            }
        }
    }

    /// See `SHA256.finalize(_:into:)`; `outputs` holds `count` pointers.
    func finalize(into outputs: UnsafePointer<UnsafeMutableRawPointer>) {
        guard count > 0 else { return }
        guard inStep else {
            for index in 0..<count {
                hash(index).pointee.finalize(into: UnsafeMutableRawBufferPointer(start: outputs[index], count: SHA256.digestByteCount))
            }
            return
        }
        // In step, every hash needs the extra final block or none does.
        var extraBlock = false
        for index in 0..<count { extraBlock = hash(index).pointee.padPartialBlock() }
        if extraBlock {
            compressPartialBlocks()
            for index in 0..<count { hash(index).pointee.clearPartialBlock() }
        }
        for index in 0..<count { hash(index).pointee.appendBitLength() }
        compressPartialBlocks()
        for index in 0..<count {
            hash(index).pointee.writeDigest(to: UnsafeMutableRawBufferPointer(start: outputs[index], count: SHA256.digestByteCount))
            hash(index).pointee.wipe()
        }
    }

    /// Copies `byteCount` bytes from `source` into hash `index`'s partial block at `offset`.
    private func copyIntoPartialBlock(_ index: Int, at offset: Int, from source: UnsafeRawPointer, count byteCount: Int) {
        withUnsafeMutableBytes(of: &hash(index).pointee.partialBlock) { block in
            (block.baseAddress! + offset).copyMemory(from: source, byteCount: byteCount)
        }
    }

    /// Compresses every hash's (full) partial block.
    private func compressPartialBlocks() {
        let blockOffset = SHA256Batch.partialBlockOffset
        compress(blockCount: 1) { UnsafeRawPointer(base + $0 * stride + blockOffset) }
    }

    /// Folds `blockCount` blocks from `blocks(i)` into hash i's state, for every hash: groups of
    /// the backend's width through its multi-stream compression, then the remainder (see
    /// `SHA256.update(_:_:byteCount:)`).
    private func compress(blockCount: Int, _ blocks: (Int) -> UnsafeRawPointer) {
        let first = hash(0).pointee
        let stateOffset = SHA256Batch.stateOffset
        @inline(__always) func state(_ index: Int) -> UnsafeMutablePointer<UInt32> {
            (base + index * stride + stateOffset).assumingMemoryBound(to: UInt32.self)
        }
        var done = 0
        if let compressMany = first.compressMany, first.lanes >= 2 {
            let lanes = first.lanes
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<UInt32>.self, capacity: lanes) { states in
                withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: lanes) { sources in
                    while count - done >= lanes || (count - done > 0 && 2 * (count - done) >= lanes) {
                        let group = min(lanes, count - done)
                        for lane in 0..<group {
                            states.initializeElement(at: lane, to: state(done + lane))
                            sources.initializeElement(at: lane, to: blocks(done + lane))
                        }
                        compressMany(UnsafePointer(states.baseAddress!), UnsafePointer(sources.baseAddress!), group, blockCount)
                        done += group
                    }
                }
            }
        }
        while count - done >= 2 {
            if let compress2 = first.compress2 {
                compress2(state(done), blocks(done), state(done + 1), blocks(done + 1), blockCount)
            } else {
                first.compress(state(done), blocks(done), blockCount)
                first.compress(state(done + 1), blocks(done + 1), blockCount)
            }
            done += 2
        }
        if done < count { first.compress(state(done), blocks(done), blockCount) }
    }
}
