// AES-256 in portable Swift, bitsliced so that no table is ever indexed with secret data.
//
// The round functions live in `AES256Bitsliced.swift` (`BitslicedState`). This file holds the
// key schedule, the conversion of blocks to and from the bitsliced form, and CTR mode, which
// runs eight blocks per pass (two four-block groups side by side in `PlanePair` planes); the
// last pass uses as much of its keystream as is needed. Single blocks (`encryptBlock`) and
// the key schedule's SubWord use one four-block group in `UInt64` planes.
//
// What is constant time: key expansion, block encryption and CTR keystream use only
// AND/XOR/NOT, shifts and lane shuffles by constant amounts, and multiplications of data by
// public constants (vector multiplies, fixed latency on x86-64 and arm64) on data words, and
// every memory address depends only on public lengths, so timing does not depend on the key,
// the data or the counter.
// What is not: the amount of work depends on the byte count (which is public). Keystream bytes
// of a partial final pass go through a stack buffer that is not wiped; the expanded key lives
// in caller-owned storage, which `AES256Key` wipes.

/// The portable, constant-time AES-256 implementation (bitsliced, four or eight blocks at a time).
public enum AES256Portable {
    /// Bytes between two planes of a round key in the schedule: each 64-bit plane is stored
    /// twice, so that the eight-block code loads it for both lanes with one aligned load.
    static let planeStride = 16
    /// Where, after a round key's 8 planes, the schedule keeps a copy of the 16 bytes of
    /// constants `PlanePair.shiftingRows` multiplies by. (One copy per round: loaded in each
    /// round, they are used straight from memory; one copy loaded before the round loop was
    /// kept by the compiler in a widened form that cost 8 extra instructions per round.)
    static let shiftRowsMultipliersOffset = 8 * planeStride
    /// Bytes between two round keys in the schedule (8 planes, then the multipliers).
    static let roundKeyStride = shiftRowsMultipliersOffset + 16
    /// Bytes of schedule: 15 bitsliced round keys, each followed by the ShiftRows multipliers.
    static let scheduleByteCount = 15 * roundKeyStride

    /// The engine: key expansion, single-block encryption and CTR keystream, all constant time.
    public static let engine = AES256Engine(
        scheduleByteCount: scheduleByteCount,
        expandKey: expandKey(_:into:),
        encryptBlock: encryptBlock,
        ctrXor: ctrXor
    )

    /// One 16-byte block as the two little-endian 64-bit loads of its bytes would see it.
    typealias Block = (low: UInt64, high: UInt64)

    // MARK: Key expansion

    /// Expands a 32-byte key (FIPS 197 §5.2) and stores each round key in bitsliced form
    /// (the round key repeated in all four block slots), 8 planes per round, each plane twice,
    /// each round key followed by the ShiftRows multipliers. Layout: see `planeStride`, `roundKeyStride`,
    /// `shiftRowsMultipliersOffset`.
    static func expandKey(_ key: UnsafeRawPointer, into schedule: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 60) { words in
            // Words are little-endian: byte 0 of the AES word is the low byte.
            for i in 0..<8 {
                words[i] = UInt32(littleEndian: key.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            }
            var roundConstant: UInt32 = 1
            for i in 8..<60 {
                var temp = words[i - 1]
                if i % 8 == 0 {
                    // RotWord moves byte 1 to byte 0: a right rotation of the little-endian word.
                    temp = substituteWord((temp >> 8) | (temp << 24)) ^ roundConstant
                    roundConstant <<= 1  // reaches only 0x40 for AES-256, so no reduction is needed
                } else if i % 8 == 4 {
                    temp = substituteWord(temp)
                }
                words[i] = words[i - 8] ^ temp
            }
            for round in 0..<15 {
                let low = UInt64(words[4 * round]) | UInt64(words[4 * round + 1]) << 32
                let high = UInt64(words[4 * round + 2]) | UInt64(words[4 * round + 3]) << 32
                let state = BitslicedState<UInt64>((low, high), (low, high), (low, high), (low, high))
                state.storeRoundKey(to: schedule + roundKeyStride * round)
                // Rows 0...3 of a plane are its 16-bit lanes 0...3 (little-endian); row r is
                // multiplied by 2^(16 − 4·r) mod 2^16. Public constants, stored for both planes.
                let multipliers: UInt64 = 0x0010_0100_1000_0001
                let offset = roundKeyStride * round + shiftRowsMultipliersOffset
                schedule.storeBytes(of: multipliers.littleEndian, toByteOffset: offset, as: UInt64.self)
                schedule.storeBytes(of: multipliers.littleEndian, toByteOffset: offset + 8, as: UInt64.self)
            }
            // The plain round keys are secret: clear them before the stack space is reused.
            SecureWipe.wipe(UnsafeMutableRawBufferPointer(words))
        }
    }

    /// SubWord: the S-box applied to each byte of a word, through the bitsliced circuit.
    static func substituteWord(_ word: UInt32) -> UInt32 {
        var state = BitslicedState<UInt64>((UInt64(word), 0), (0, 0), (0, 0), (0, 0))
        state.substituteBytes()
        return UInt32(truncatingIfNeeded: state.blocks().0.low)
    }

    // MARK: Encryption

    /// Encrypts one 16-byte block (it occupies one of the four slots; the others are zero).
    static func encryptBlock(_ schedule: UnsafeRawPointer, _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) {
        let low = UInt64(littleEndian: input.loadUnaligned(as: UInt64.self))
        let high = UInt64(littleEndian: input.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        var state = BitslicedState<UInt64>((low, high), (0, 0), (0, 0), (0, 0))
        state.encrypt(schedule)
        let result = state.blocks().0
        output.storeBytes(of: result.low.littleEndian, as: UInt64.self)
        output.storeBytes(of: result.high.littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// CTR mode, eight counter blocks per pass; see `AES256Engine.ctrXor`. The last pass may
    /// use only some of its keystream.
    static func ctrXor(_ schedule: UnsafeRawPointer, _ counterHigh: UInt64, _ counterLow: UInt64,
                       _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ count: Int) {
        var high = counterHigh
        var low = counterLow
        /// The next counter block (bytes be64(high) || be64(low)), then the 128-bit increment
        /// (counters are public, so the carry may be computed any way).
        @inline(__always) func nextCounterBlock() -> SIMD16<UInt8> {
            let block = unsafeBitCast(SIMD2<UInt64>(high.bigEndian, low.bigEndian), to: SIMD16<UInt8>.self)
            low &+= 1
            high &+= low == 0 ? 1 : 0
            return block
        }
        var offset = 0
        while offset < count {
            let counters = (nextCounterBlock(), nextCounterBlock(), nextCounterBlock(), nextCounterBlock(),
                            nextCounterBlock(), nextCounterBlock(), nextCounterBlock(), nextCounterBlock())
            var state = BitslicedState<PlanePair>(counters)
            state.encrypt(schedule)
            let keystream = state.blockBytes()
            if count - offset >= 128 {
                xorBlock(input + offset, output + offset, keystream.0)
                xorBlock(input + offset + 16, output + offset + 16, keystream.1)
                xorBlock(input + offset + 32, output + offset + 32, keystream.2)
                xorBlock(input + offset + 48, output + offset + 48, keystream.3)
                xorBlock(input + offset + 64, output + offset + 64, keystream.4)
                xorBlock(input + offset + 80, output + offset + 80, keystream.5)
                xorBlock(input + offset + 96, output + offset + 96, keystream.6)
                xorBlock(input + offset + 112, output + offset + 112, keystream.7)
                offset += 128
            } else {
                xorFinal(input + offset, output + offset, keystream, count - offset)
                offset = count
            }
        }
    }

    /// output[0..<16] = input[0..<16] ^ one keystream block (in memory byte order).
    @inline(__always)
    static func xorBlock(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ keystream: SIMD16<UInt8>) {
        let data = PlanePair(bytes: input.loadUnaligned(as: SIMD16<UInt8>.self))
        output.storeBytes(of: (data ^ PlanePair(bytes: keystream)).bytes, as: SIMD16<UInt8>.self)
    }

    /// output[0..<byteCount] = input[0..<byteCount] ^ the first `byteCount` (< 128) bytes of the
    /// keystream: whole blocks directly, the rest byte by byte.
    static func xorFinal(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer,
                         _ keystream: BitslicedState<PlanePair>.EightBlocks, _ byteCount: Int) {
        var stream = keystream
        withUnsafeBytes(of: &stream) { bytes in
            var offset = 0
            while byteCount - offset >= 16 {
                xorBlock(input + offset, output + offset,
                         bytes.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self))
                offset += 16
            }
            while offset < byteCount {
                output.storeBytes(of: input.load(fromByteOffset: offset, as: UInt8.self) ^ bytes[offset],
                                  toByteOffset: offset, as: UInt8.self)
                offset += 1
            }
        }
    }
}
// MARK: Blocks to and from the bitsliced form

extension BitslicedState where Word == UInt64 {
    /// Loads four blocks, each given as its two little-endian 64-bit halves.
    @inline(__always)
    init(_ block0: AES256Portable.Block, _ block1: AES256Portable.Block,
         _ block2: AES256Portable.Block, _ block3: AES256Portable.Block) {
        self = .packed(block0, block1, block2, block3)
        transpose()
    }

    /// Four blocks in "packed" form, the step before the transpose: word k (k < 4) gets block
    /// k's columns 0 and 2, word 4 + k its columns 1 and 3, with the byte for row r and column c
    /// at byte position 2·r + c/2. A transpose of each 8×8 bit matrix then turns "bit b of byte m
    /// of word k" into "bit 8·m + k of plane b".
    @inline(__always)
    static func packed(_ block0: AES256Portable.Block, _ block1: AES256Portable.Block,
                       _ block2: AES256Portable.Block, _ block3: AES256Portable.Block) -> Self {
        Self(spread(block0.low) | spread(block0.high) &<< 8,
             spread(block1.low) | spread(block1.high) &<< 8,
             spread(block2.low) | spread(block2.high) &<< 8,
             spread(block3.low) | spread(block3.high) &<< 8,
             spread(block0.low &>> 32) | spread(block0.high &>> 32) &<< 8,
             spread(block1.low &>> 32) | spread(block1.high &>> 32) &<< 8,
             spread(block2.low &>> 32) | spread(block2.high &>> 32) &<< 8,
             spread(block3.low &>> 32) | spread(block3.high &>> 32) &<< 8)
    }

    /// Moves the low four bytes of `value` to the even byte positions 0, 2, 4, 6.
    @inline(__always)
    static func spread(_ value: UInt64) -> UInt64 {
        var v = value & 0xFFFF_FFFF
        v = (v | v &<< 16) & 0x0000_FFFF_0000_FFFF
        return (v | v &<< 8) & 0x00FF_00FF_00FF_00FF
    }

    /// Inverse of `spread`: gathers the even byte positions into the low four bytes.
    @inline(__always)
    static func gather(_ value: UInt64) -> UInt64 {
        var v = value & 0x00FF_00FF_00FF_00FF
        v = (v | v &>> 8) & 0x0000_FFFF_0000_FFFF
        return (v | v &>> 16) & 0xFFFF_FFFF
    }

    /// The four blocks of a packed (already transposed back) state: the inverse of `packed`.
    @inline(__always)
    func unpacked() -> (AES256Portable.Block, AES256Portable.Block, AES256Portable.Block, AES256Portable.Block) {
        @inline(__always) func unload(_ even: UInt64, _ odd: UInt64) -> AES256Portable.Block {
            (low: Self.gather(even) | Self.gather(odd) &<< 32, high: Self.gather(even &>> 8) | Self.gather(odd &>> 8) &<< 32)
        }
        return (unload(q0, q4), unload(q1, q5), unload(q2, q6), unload(q3, q7))
    }

    /// Unloads the four blocks as little-endian halves (the inverse of `init`).
    @inline(__always)
    func blocks() -> (AES256Portable.Block, AES256Portable.Block, AES256Portable.Block, AES256Portable.Block) {
        var copy = self
        copy.transpose()
        return copy.unpacked()
    }

    /// Stores the eight planes as one bitsliced round key, each plane twice (16 bytes).
    func storeRoundKey(to schedule: UnsafeMutableRawPointer) {
        @inline(__always) func store(_ plane: UInt64, _ index: Int) {
            schedule.storeBytes(of: plane, toByteOffset: AES256Portable.planeStride * index, as: UInt64.self)
            schedule.storeBytes(of: plane, toByteOffset: AES256Portable.planeStride * index + 8, as: UInt64.self)
        }
        store(q0, 0); store(q1, 1); store(q2, 2); store(q3, 3)
        store(q4, 4); store(q5, 5); store(q6, 6); store(q7, 7)
    }
}

extension BitslicedState where Word == PlanePair {
    /// Eight blocks, each as its 16 bytes in memory order.
    typealias EightBlocks = (SIMD16<UInt8>, SIMD16<UInt8>, SIMD16<UInt8>, SIMD16<UInt8>,
                             SIMD16<UInt8>, SIMD16<UInt8>, SIMD16<UInt8>, SIMD16<UInt8>)

    /// Loads eight blocks: blocks 0...3 form the group in lane 0, blocks 4...7 the group in
    /// lane 1. Same packing as `BitslicedState<UInt64>.packed` (whose comment gives the
    /// layout), done with byte shuffles: interleaving a block's bytes 0...7 with its bytes
    /// 8...15 gives packed word k in the low eight bytes and packed word 4 + k in the high eight.
    @inline(__always)
    init(_ blocks: EightBlocks) {
        @inline(__always) func interleaved(_ b: SIMD16<UInt8>) -> PlanePair {
            PlanePair(bytes: SIMD16(b[0], b[8], b[1], b[9], b[2], b[10], b[3], b[11],
                                    b[4], b[12], b[5], b[13], b[6], b[14], b[7], b[15]))
        }
        let i0 = interleaved(blocks.0), i1 = interleaved(blocks.1), i2 = interleaved(blocks.2), i3 = interleaved(blocks.3)
        let i4 = interleaved(blocks.4), i5 = interleaved(blocks.5), i6 = interleaved(blocks.6), i7 = interleaved(blocks.7)
        self.init(PlanePair(i0.first, i4.first), PlanePair(i1.first, i5.first),
                  PlanePair(i2.first, i6.first), PlanePair(i3.first, i7.first),
                  PlanePair(i0.second, i4.second), PlanePair(i1.second, i5.second),
                  PlanePair(i2.second, i6.second), PlanePair(i3.second, i7.second))
        transpose()
    }

    /// The eight blocks, in memory byte order (the inverse of `init`).
    @inline(__always)
    func blockBytes() -> EightBlocks {
        var copy = self
        copy.transpose()
        @inline(__always) func block(_ even: UInt64, _ odd: UInt64) -> SIMD16<UInt8> {
            let v = PlanePair(even, odd).bytes
            return SIMD16(v[0], v[2], v[4], v[6], v[8], v[10], v[12], v[14],
                          v[1], v[3], v[5], v[7], v[9], v[11], v[13], v[15])
        }
        return (block(copy.q0.first, copy.q4.first), block(copy.q1.first, copy.q5.first),
                block(copy.q2.first, copy.q6.first), block(copy.q3.first, copy.q7.first),
                block(copy.q0.second, copy.q4.second), block(copy.q1.second, copy.q5.second),
                block(copy.q2.second, copy.q6.second), block(copy.q3.second, copy.q7.second))
    }
}
