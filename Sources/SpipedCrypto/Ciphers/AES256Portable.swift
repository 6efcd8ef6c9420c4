// AES-256 in portable Swift, bitsliced so that no table is ever indexed with secret data.
//
// Design (after Thomas Pornin's description of BearSSL's `aes_ct64`; written for this project):
// four 16-byte blocks are held as eight 64-bit words q0...q7, word qb holding bit b of all
// 64 bytes. Inside a word, the bit for (block k, row r, column c) sits at position
// 16·r + 4·c + k, so ShiftRows is a fixed rotation of each 16-bit row, MixColumns is made of
// rotations of whole words by 16 and 32 bits, and SubBytes is the 115-gate Boyar–Peralta
// Boolean circuit evaluated once on all 64 bytes.
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

    /// SubBytes on every byte: the 115-gate S-box circuit of Boyar and Peralta (32 AND, 79 XOR,
    /// 4 XNOR; J. Boyar, R. Peralta, "A new combinational logic minimization technique with
    /// applications to cryptology", 2010; the circuit BearSSL's constant-time AES also uses),
    /// checked against the S-box definition on all 256 inputs. Inputs x0...x7 and outputs
    /// s0...s7 are numbered from the most significant bit, so x0 is plane 7.
    @inline(__always)
    mutating func substituteBytes() {
        let x0 = q7, x1 = q6, x2 = q5, x3 = q4, x4 = q3, x5 = q2, x6 = q1, x7 = q0
        // Top linear layer.
        let y14 = x3 ^ x5
        let y13 = x0 ^ x6
        let y9 = x0 ^ x3
        let y8 = x0 ^ x5
        let t0 = x1 ^ x2
        let y1 = t0 ^ x7
        let y4 = y1 ^ x3
        let y12 = y13 ^ y14
        let y2 = y1 ^ x0
        let y5 = y1 ^ x6
        let y3 = y5 ^ y8
        let t1 = x4 ^ y12
        let y15 = t1 ^ x5
        let y20 = t1 ^ x1
        let y6 = y15 ^ x7
        let y10 = y15 ^ t0
        let y11 = y20 ^ y9
        let y7 = x7 ^ y11
        let y17 = y10 ^ y11
        let y19 = y10 ^ y8
        let y16 = t0 ^ y11
        let y21 = y13 ^ y16
        let y18 = x0 ^ y16
        // Nonlinear middle layer: inversion in GF(2^8), computed through GF(2^4).
        let t2 = y12 & y15
        let t3 = y3 & y6
        let t4 = t3 ^ t2
        let t5 = y4 & x7
        let t6 = t5 ^ t2
        let t7 = y13 & y16
        let t8 = y5 & y1
        let t9 = t8 ^ t7
        let t10 = y2 & y7
        let t11 = t10 ^ t7
        let t12 = y9 & y11
        let t13 = y14 & y17
        let t14 = t13 ^ t12
        let t15 = y8 & y10
        let t16 = t15 ^ t12
        let t17 = t4 ^ t14
        let t18 = t6 ^ t16
        let t19 = t9 ^ t14
        let t20 = t11 ^ t16
        let t21 = t17 ^ y20
        let t22 = t18 ^ y19
        let t23 = t19 ^ y21
        let t24 = t20 ^ y18
        let t25 = t21 ^ t22
        let t26 = t21 & t23
        let t27 = t24 ^ t26
        let t28 = t25 & t27
        let t29 = t28 ^ t22
        let t30 = t23 ^ t24
        let t31 = t22 ^ t26
        let t32 = t31 & t30
        let t33 = t32 ^ t24
        let t34 = t23 ^ t33
        let t35 = t27 ^ t33
        let t36 = t24 & t35
        let t37 = t36 ^ t34
        let t38 = t27 ^ t36
        let t39 = t29 & t38
        let t40 = t25 ^ t39
        let t41 = t40 ^ t37
        let t42 = t29 ^ t33
        let t43 = t29 ^ t40
        let t44 = t33 ^ t37
        let t45 = t42 ^ t41
        let z0 = t44 & y15
        let z1 = t37 & y6
        let z2 = t33 & x7
        let z3 = t43 & y16
        let z4 = t40 & y1
        let z5 = t29 & y7
        let z6 = t42 & y11
        let z7 = t45 & y17
        let z8 = t41 & y10
        let z9 = t44 & y12
        let z10 = t37 & y3
        let z11 = t33 & y4
        let z12 = t43 & y13
        let z13 = t40 & y5
        let z14 = t29 & y2
        let z15 = t42 & y9
        let z16 = t45 & y14
        let z17 = t41 & y8
        // Bottom linear layer, including the affine constant 0x63 (the XNORs).
        let t46 = z15 ^ z16
        let t47 = z10 ^ z11
        let t48 = z5 ^ z13
        let t49 = z9 ^ z10
        let t50 = z2 ^ z12
        let t51 = z2 ^ z5
        let t52 = z7 ^ z8
        let t53 = z0 ^ z3
        let t54 = z6 ^ z7
        let t55 = z16 ^ z17
        let t56 = z12 ^ t48
        let t57 = t50 ^ t53
        let t58 = z4 ^ t46
        let t59 = z3 ^ t54
        let t60 = t46 ^ t57
        let t61 = z14 ^ t57
        let t62 = t52 ^ t58
        let t63 = t49 ^ t58
        let t64 = z4 ^ t59
        let t65 = t61 ^ t62
        let t66 = z1 ^ t63
        let s0 = t59 ^ t63
        let s6 = ~(t56 ^ t62)
        let s7 = ~(t48 ^ t60)
        let t67 = t64 ^ t65
        let s3 = t53 ^ t66
        let s4 = t51 ^ t66
        let s5 = t47 ^ t65
        let s1 = ~(t64 ^ s3)
        let s2 = ~(t55 ^ t67)
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
