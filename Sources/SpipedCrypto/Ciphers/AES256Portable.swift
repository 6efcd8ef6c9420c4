// AES-256 in portable Swift, bitsliced so that no table is ever indexed with secret data.
//
// Design (after Thomas Pornin's description of BearSSL's `aes_ct64`; written for this project):
// four 16-byte blocks are held as eight 64-bit words q0...q7, word qb holding bit b of all
// 64 bytes. Inside a word, the bit for (block k, row r, column c) sits at position
// 16·r + 4·c + k, so ShiftRows is a fixed rotation of each 16-bit row, MixColumns is made of
// rotations of whole words by 16 and 32 bits, and SubBytes is the 113-gate Boyar–Peralta
// circuit evaluated once on all 64 bytes.
// (Two groups in `SIMD2<UInt64>` words were tried: Swift's SIMD bitwise operators are lane loops
// that LLVM left scalar here, so that version was slower and was dropped.)
//
// What is constant time: key expansion, block encryption and CTR keystream use only
// AND/XOR/NOT/shift on data words, and every memory address depends only on public lengths,
// so timing does not depend on the key, the data or the counter.
// What is not: the amount of work depends on the byte count (which is public). Keystream bytes
// of a partial final block pass through a stack buffer that is not wiped; the expanded key lives
// in caller-owned storage, which `AES256Key` wipes.

/// The portable, constant-time AES-256 implementation (bitsliced, four blocks at a time).
public enum AES256Portable {
    /// Bytes of bitsliced schedule: 15 round keys × 8 bit-plane words × 8 bytes.
    static let scheduleByteCount = 15 * 8 * 8

    /// The engine: key expansion, single-block encryption and CTR keystream, all constant time.
    public static let engine = AES256Engine(
        scheduleByteCount: scheduleByteCount,
        expandKey: { key, schedule in expandKey(key, into: schedule) },
        encryptBlock: { schedule, input, output in encryptBlock(schedule, input, output) },
        ctrXor: { schedule, counterHigh, counterLow, input, output, count in
            ctrXor(schedule, counterHigh, counterLow, input, output, count)
        }
    )

    // MARK: Key expansion

    /// Expands a 32-byte key (FIPS 197 §5.2) and stores each round key in bitsliced form
    /// (the round key repeated in all four block slots), 8 planes per round.
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
                let state = BitslicedState((low, high), (low, high), (low, high), (low, high))
                state.storeRoundKey(to: schedule + 64 * round)
            }
            // The plain round keys are secret: clear them before the stack space is reused.
            AES256Key.wipe(UnsafeMutableRawPointer(words.baseAddress!), byteCount: 60 * 4)
        }
    }

    /// SubWord: the S-box applied to each byte of a word, through the bitsliced circuit.
    static func substituteWord(_ word: UInt32) -> UInt32 {
        var state = BitslicedState((UInt64(word), 0), (0, 0), (0, 0), (0, 0))
        state.substituteBytes()
        return UInt32(truncatingIfNeeded: state.blocks().0.low)
    }

    // MARK: Encryption

    /// Encrypts the blocks held in `state` (FIPS 197 §5.1 with Nr = 14).
    @inline(__always)
    static func encrypt(_ state: inout BitslicedState, _ schedule: UnsafeRawPointer) {
        state.addRoundKey(schedule)
        for round in 1..<14 {
            state.substituteBytes()
            state.shiftRows()
            state.mixColumns()
            state.addRoundKey(schedule + 64 * round)
        }
        state.substituteBytes()
        state.shiftRows()
        state.addRoundKey(schedule + 64 * 14)
    }

    /// Encrypts one 16-byte block (it occupies one of the four slots; the others are zero).
    static func encryptBlock(_ schedule: UnsafeRawPointer, _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) {
        let low = UInt64(littleEndian: input.loadUnaligned(as: UInt64.self))
        let high = UInt64(littleEndian: input.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        var state = BitslicedState((low, high), (0, 0), (0, 0), (0, 0))
        encrypt(&state, schedule)
        let result = state.blocks().0
        output.storeBytes(of: result.low.littleEndian, as: UInt64.self)
        output.storeBytes(of: result.high.littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// CTR mode, four counter blocks per pass; see `AES256Engine.ctrXor`.
    static func ctrXor(_ schedule: UnsafeRawPointer, _ counterHigh: UInt64, _ counterLow: UInt64,
                       _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ count: Int) {
        var high = counterHigh
        var low = counterLow
        /// The next counter block as two little-endian loads of its bytes would see it, then the
        /// 128-bit increment (counters are public, so the carry may be computed any way).
        @inline(__always) func nextCounterBlock() -> (low: UInt64, high: UInt64) {
            // Counter block bytes are be64(high) || be64(low).
            let block = (low: high.byteSwapped, high: low.byteSwapped)
            low &+= 1
            high &+= low == 0 ? 1 : 0
            return block
        }
        var offset = 0
        while offset < count {
            var state = BitslicedState(nextCounterBlock(), nextCounterBlock(), nextCounterBlock(), nextCounterBlock())
            encrypt(&state, schedule)
            let keystream = state.blocks()
            if count - offset >= 64 {
                xorBlock(input + offset, output + offset, keystream.0.low, keystream.0.high)
                xorBlock(input + offset + 16, output + offset + 16, keystream.1.low, keystream.1.high)
                xorBlock(input + offset + 32, output + offset + 32, keystream.2.low, keystream.2.high)
                xorBlock(input + offset + 48, output + offset + 48, keystream.3.low, keystream.3.high)
                offset += 64
            } else {
                // Final partial group: spill the keystream and use only the bytes needed.
                var buffer = (keystream.0.low.littleEndian, keystream.0.high.littleEndian,
                              keystream.1.low.littleEndian, keystream.1.high.littleEndian,
                              keystream.2.low.littleEndian, keystream.2.high.littleEndian,
                              keystream.3.low.littleEndian, keystream.3.high.littleEndian)
                withUnsafeBytes(of: &buffer) { stream in
                    for index in 0..<(count - offset) {
                        output.storeBytes(of: input.load(fromByteOffset: offset + index, as: UInt8.self) ^ stream[index],
                                          toByteOffset: offset + index, as: UInt8.self)
                    }
                }
                offset = count
            }
        }
    }

    /// output[0..<16] = input[0..<16] ^ the keystream block given as little-endian halves.
    @inline(__always)
    static func xorBlock(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ low: UInt64, _ high: UInt64) {
        output.storeBytes(of: input.loadUnaligned(as: UInt64.self) ^ low.littleEndian, as: UInt64.self)
        output.storeBytes(of: input.loadUnaligned(fromByteOffset: 8, as: UInt64.self) ^ high.littleEndian,
                          toByteOffset: 8, as: UInt64.self)
    }
}

/// Four AES states in bitsliced form: plane `qb` holds bit b of every byte; the
/// byte at (block k, row r, column c) is at bit position 16·r + 4·c + k of each word.
struct BitslicedState {
    var q0: UInt64, q1: UInt64, q2: UInt64, q3: UInt64
    var q4: UInt64, q5: UInt64, q6: UInt64, q7: UInt64

    /// Loads four blocks, each given as its two little-endian 64-bit halves.
    @inline(__always)
    init(_ block0: (low: UInt64, high: UInt64), _ block1: (low: UInt64, high: UInt64),
         _ block2: (low: UInt64, high: UInt64), _ block3: (low: UInt64, high: UInt64)) {
        // Word k (k < 4) gets block k's columns 0 and 2, word 4 + k its columns 1 and 3, with the
        // byte for row r and column c at byte position 2·r + c/2; then a transpose of each 8×8
        // bit matrix turns "bit b of byte m of word k" into "bit 8·m + k of plane b".
        q0 = Self.spread(block0.low) | Self.spread(block0.high) &<< 8
        q1 = Self.spread(block1.low) | Self.spread(block1.high) &<< 8
        q2 = Self.spread(block2.low) | Self.spread(block2.high) &<< 8
        q3 = Self.spread(block3.low) | Self.spread(block3.high) &<< 8
        q4 = Self.spread(block0.low &>> 32) | Self.spread(block0.high &>> 32) &<< 8
        q5 = Self.spread(block1.low &>> 32) | Self.spread(block1.high &>> 32) &<< 8
        q6 = Self.spread(block2.low &>> 32) | Self.spread(block2.high &>> 32) &<< 8
        q7 = Self.spread(block3.low &>> 32) | Self.spread(block3.high &>> 32) &<< 8
        transpose()
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

    /// Unloads the four blocks as little-endian halves (the inverse of `init`).
    @inline(__always)
    func blocks() -> ((low: UInt64, high: UInt64), (low: UInt64, high: UInt64), (low: UInt64, high: UInt64), (low: UInt64, high: UInt64)) {
        var copy = self
        copy.transpose()
        @inline(__always) func unload(_ even: UInt64, _ odd: UInt64) -> (low: UInt64, high: UInt64) {
            (low: Self.gather(even) | Self.gather(odd) &<< 32, high: Self.gather(even &>> 8) | Self.gather(odd &>> 8) &<< 32)
        }
        return (unload(copy.q0, copy.q4), unload(copy.q1, copy.q5), unload(copy.q2, copy.q6), unload(copy.q3, copy.q7))
    }

    /// Transposes the 8×8 bit matrix at each byte position (bit b of word k ↔ bit k of word b);
    /// its own inverse. Three rounds of "swap-move" exchange 1-, 2- and 4-bit groups.
    @inline(__always)
    mutating func transpose() {
        @inline(__always) func swap(_ a: inout UInt64, _ b: inout UInt64, _ mask: UInt64, _ shift: UInt64) {
            let x = a, y = b
            a = (x & mask) | ((y & mask) &<< shift)
            b = ((x &>> shift) & mask) | (y & ~mask)
        }
        swap(&q0, &q1, 0x5555_5555_5555_5555, 1)
        swap(&q2, &q3, 0x5555_5555_5555_5555, 1)
        swap(&q4, &q5, 0x5555_5555_5555_5555, 1)
        swap(&q6, &q7, 0x5555_5555_5555_5555, 1)
        swap(&q0, &q2, 0x3333_3333_3333_3333, 2)
        swap(&q1, &q3, 0x3333_3333_3333_3333, 2)
        swap(&q4, &q6, 0x3333_3333_3333_3333, 2)
        swap(&q5, &q7, 0x3333_3333_3333_3333, 2)
        swap(&q0, &q4, 0x0F0F_0F0F_0F0F_0F0F, 4)
        swap(&q1, &q5, 0x0F0F_0F0F_0F0F_0F0F, 4)
        swap(&q2, &q6, 0x0F0F_0F0F_0F0F_0F0F, 4)
        swap(&q3, &q7, 0x0F0F_0F0F_0F0F_0F0F, 4)
    }

    /// AddRoundKey: XOR with one bitsliced round key (8 words).
    @inline(__always)
    mutating func addRoundKey(_ key: UnsafeRawPointer) {
        q0 = q0 ^ key.load(fromByteOffset: 0, as: UInt64.self); q1 = q1 ^ key.load(fromByteOffset: 8 * 1, as: UInt64.self)
        q2 = q2 ^ key.load(fromByteOffset: 8 * 2, as: UInt64.self); q3 = q3 ^ key.load(fromByteOffset: 8 * 3, as: UInt64.self)
        q4 = q4 ^ key.load(fromByteOffset: 8 * 4, as: UInt64.self); q5 = q5 ^ key.load(fromByteOffset: 8 * 5, as: UInt64.self)
        q6 = q6 ^ key.load(fromByteOffset: 8 * 6, as: UInt64.self); q7 = q7 ^ key.load(fromByteOffset: 8 * 7, as: UInt64.self)
    }

    /// SubBytes on every byte: the depth-16, 113-gate S-box circuit of Boyar and Peralta
    /// ("A depth-16 circuit for the AES S-box", 2011). Inputs U0...U7 and outputs S0...S7 are
    /// numbered from the most significant bit, so U0 is plane 7.
    @inline(__always)
    mutating func substituteBytes() {
        let u0 = q7, u1 = q6, u2 = q5, u3 = q4, u4 = q3, u5 = q2, u6 = q1, u7 = q0
        // Top linear layer.
        let t1 = u0 ^ u3
        let t2 = u0 ^ u5
        let t3 = u0 ^ u6
        let t4 = u3 ^ u5
        let t5 = u4 ^ u6
        let t6 = t1 ^ t5
        let t7 = u1 ^ u2
        let t8 = u7 ^ t6
        let t9 = u7 ^ t7
        let t10 = t6 ^ t7
        let t11 = u1 ^ u5
        let t12 = u2 ^ u5
        let t13 = t3 ^ t4
        let t14 = t6 ^ t11
        let t15 = t5 ^ t11
        let t16 = t5 ^ t12
        let t17 = t9 ^ t16
        let t18 = u3 ^ u7
        let t19 = t7 ^ t18
        let t20 = t1 ^ t19
        let t21 = u6 ^ u7
        let t22 = t7 ^ t21
        let t23 = t2 ^ t22
        let t24 = t2 ^ t10
        let t25 = t20 ^ t17
        let t26 = t3 ^ t16
        let t27 = t1 ^ t12
        // Nonlinear middle layer: inversion in GF(2^8), computed through GF(2^4).
        let m1 = t13 & t6
        let m2 = t23 & t8
        let m3 = t14 ^ m1
        let m4 = t19 & u7
        let m5 = m4 ^ m1
        let m6 = t3 & t16
        let m7 = t22 & t9
        let m8 = t26 ^ m6
        let m9 = t20 & t17
        let m10 = m9 ^ m6
        let m11 = t1 & t15
        let m12 = t4 & t27
        let m13 = m12 ^ m11
        let m14 = t2 & t10
        let m15 = m14 ^ m11
        let m16 = m3 ^ m2
        let m17 = m5 ^ t24
        let m18 = m8 ^ m7
        let m19 = m10 ^ m15
        let m20 = m16 ^ m13
        let m21 = m17 ^ m15
        let m22 = m18 ^ m13
        let m23 = m19 ^ t25
        let m24 = m22 ^ m23
        let m25 = m22 & m20
        let m26 = m21 ^ m25
        let m27 = m20 ^ m21
        let m28 = m23 ^ m25
        let m29 = m28 & m27
        let m30 = m26 & m24
        let m31 = m20 & m23
        let m32 = m27 & m31
        let m33 = m27 ^ m25
        let m34 = m21 & m22
        let m35 = m24 & m34
        let m36 = m24 ^ m25
        let m37 = m21 ^ m29
        let m38 = m32 ^ m33
        let m39 = m23 ^ m30
        let m40 = m35 ^ m36
        let m41 = m38 ^ m40
        let m42 = m37 ^ m39
        let m43 = m37 ^ m38
        let m44 = m39 ^ m40
        let m45 = m42 ^ m41
        let m46 = m44 & t6
        let m47 = m40 & t8
        let m48 = m39 & u7
        let m49 = m43 & t16
        let m50 = m38 & t9
        let m51 = m37 & t17
        let m52 = m42 & t15
        let m53 = m45 & t27
        let m54 = m41 & t10
        let m55 = m44 & t13
        let m56 = m40 & t23
        let m57 = m39 & t19
        let m58 = m43 & t3
        let m59 = m38 & t22
        let m60 = m37 & t20
        let m61 = m42 & t1
        let m62 = m45 & t4
        let m63 = m41 & t2
        // Bottom linear layer, including the affine constant 0x63 (the XNORs).
        let l0 = m61 ^ m62
        let l1 = m50 ^ m56
        let l2 = m46 ^ m48
        let l3 = m47 ^ m55
        let l4 = m54 ^ m58
        let l5 = m49 ^ m61
        let l6 = m62 ^ l5
        let l7 = m46 ^ l3
        let l8 = m51 ^ m59
        let l9 = m52 ^ m53
        let l10 = m53 ^ l4
        let l11 = m60 ^ l2
        let l12 = m48 ^ m51
        let l13 = m50 ^ l0
        let l14 = m52 ^ m61
        let l15 = m55 ^ l1
        let l16 = m56 ^ l0
        let l17 = m57 ^ l1
        let l18 = m58 ^ l8
        let l19 = m63 ^ l4
        let l20 = l0 ^ l1
        let l21 = l1 ^ l7
        let l22 = l3 ^ l12
        let l23 = l18 ^ l2
        let l24 = l15 ^ l9
        let l25 = l6 ^ l10
        let l26 = l7 ^ l9
        let l27 = l8 ^ l10
        let l28 = l11 ^ l14
        let l29 = l11 ^ l17
        let s0 = l6 ^ l24
        let s1 = ~(l16 ^ l26)
        let s2 = ~(l19 ^ l28)
        let s3 = l6 ^ l21
        let s4 = l20 ^ l22
        let s5 = l25 ^ l29
        let s6 = ~(l13 ^ l27)
        let s7 = ~(l6 ^ l23)
        q7 = s0; q6 = s1; q5 = s2; q4 = s3; q3 = s4; q2 = s5; q1 = s6; q0 = s7
    }

    /// ShiftRows: row r (bits 16·r ..< 16·r + 16) rotates left by r columns, i.e. its 16-bit
    /// field rotates right by 4·r bits (column c takes the byte from column c + r). Done as a
    /// byte swap of rows 2 and 3 (8 bits) followed by a 4-bit rotation of rows 1 and 3.
    @inline(__always)
    mutating func shiftRows() {
        @inline(__always) func shift(_ value: UInt64) -> UInt64 {
            var x = value
            // Swap the two bytes of the 16-bit fields of rows 2 and 3 ("delta swap").
            let swapped = (x ^ (x &>> 8)) & 0x00FF_00FF_0000_0000
            x ^= swapped ^ (swapped &<< 8)
            // Rotate the 16-bit fields of rows 1 and 3 right by 4 bits.
            return (x & 0x0000_FFFF_0000_FFFF)
                | ((x &>> 4) & 0x0FFF_0000_0FFF_0000)
                | ((x &<< 12) & 0xF000_0000_F000_0000)
        }
        q0 = shift(q0); q1 = shift(q1); q2 = shift(q2); q3 = shift(q3)
        q4 = shift(q4); q5 = shift(q5); q6 = shift(q6); q7 = shift(q7)
    }

    /// MixColumns: out[r] = 2·a[r] ⊕ 3·a[r+1] ⊕ a[r+2] ⊕ a[r+3] = 2·z ⊕ a[r+1] ⊕ z[r+2] with
    /// z = a[r] ⊕ a[r+1]. Rotating a word right by 16 bits brings row r+1 to row r; by 32, row r+2.
    /// Doubling in GF(2^8) moves plane b to b+1 and folds plane 7 into planes 0, 1, 3, 4 (0x1B).
    @inline(__always)
    mutating func mixColumns() {
        @inline(__always) func rotate16(_ x: UInt64) -> UInt64 { (x &>> 16) | (x &<< 48) }
        @inline(__always) func rotate32(_ x: UInt64) -> UInt64 { (x &>> 32) | (x &<< 32) }
        let r0 = rotate16(q0), r1 = rotate16(q1), r2 = rotate16(q2), r3 = rotate16(q3)
        let r4 = rotate16(q4), r5 = rotate16(q5), r6 = rotate16(q6), r7 = rotate16(q7)
        let z0 = q0 ^ r0, z1 = q1 ^ r1, z2 = q2 ^ r2, z3 = q3 ^ r3
        let z4 = q4 ^ r4, z5 = q5 ^ r5, z6 = q6 ^ r6, z7 = q7 ^ r7
        q0 = z7 ^ r0 ^ rotate32(z0)
        q1 = z0 ^ z7 ^ r1 ^ rotate32(z1)
        q2 = z1 ^ r2 ^ rotate32(z2)
        q3 = z2 ^ z7 ^ r3 ^ rotate32(z3)
        q4 = z3 ^ z7 ^ r4 ^ rotate32(z4)
        q5 = z4 ^ r5 ^ rotate32(z5)
        q6 = z5 ^ r6 ^ rotate32(z6)
        q7 = z6 ^ r7 ^ rotate32(z7)
    }
}

extension BitslicedState {
    /// Stores the eight planes as one bitsliced round key.
    func storeRoundKey(to schedule: UnsafeMutableRawPointer) {
        let planes = schedule.assumingMemoryBound(to: UInt64.self)
        planes[0] = q0; planes[1] = q1; planes[2] = q2; planes[3] = q3
        planes[4] = q4; planes[5] = q5; planes[6] = q6; planes[7] = q7
    }
}
