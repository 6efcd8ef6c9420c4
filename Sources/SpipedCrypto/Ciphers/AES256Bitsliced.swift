// The bitsliced AES round functions, written once for any word width.
//
// Layout (after Thomas Pornin's description of BearSSL's `aes_ct64`; written for this project):
// a group of four 16-byte blocks is held as eight 64-bit planes q0...q7, plane qb holding bit b
// of all 64 bytes. Inside a plane, the bit for (block k, row r, column c) sits at position
// 16·r + 4·c + k, so ShiftRows is a fixed rotation of each 16-bit row, MixColumns is made of
// rotations of whole planes by 16 and 32 bits, and SubBytes is one Boolean circuit evaluated
// on all 64 bytes at once.
//
// `BitslicedState<UInt64>` holds one such group. `BitslicedState<PlanePair>` holds two
// independent groups (eight blocks), one per 64-bit lane: every operation below acts on each
// lane separately, so the same code serves both, and `PlanePair` compiles to 128-bit vector
// instructions (SSE2 on x86-64, which is part of its baseline, so no compiler flag is needed;
// NEON on arm64) that do both groups' work at once. Only AND/OR/XOR/NOT, shifts and lane
// shuffles by constant amounts, and (in `PlanePair.shiftingRows`) multiplications by public
// constants are used, so the timing never depends on the data.

/// A word the bitsliced circuits operate on: one 64-bit plane (`UInt64`) or two
/// independent 64-bit planes side by side (`PlanePair`), each lane handled alike.
protocol BitslicedWord {
    /// The word with `value` in every 64-bit lane.
    init(broadcasting value: UInt64)
    /// Bitwise AND.
    static func & (lhs: Self, rhs: Self) -> Self
    /// Bitwise OR.
    static func | (lhs: Self, rhs: Self) -> Self
    /// Bitwise XOR.
    static func ^ (lhs: Self, rhs: Self) -> Self
    /// Bitwise NOT.
    static prefix func ~ (operand: Self) -> Self
    /// Left shift of each 64-bit lane by `rhs` (less than 64) bits.
    static func &<< (lhs: Self, rhs: UInt64) -> Self
    /// Logical right shift of each 64-bit lane by `rhs` (less than 64) bits.
    static func &>> (lhs: Self, rhs: UInt64) -> Self

    /// Loads one round-key plane, stored as 16 bytes holding the same 64-bit plane twice
    /// (16-byte aligned).
    init(roundKeyPlane: UnsafeRawPointer)
    /// The constant `shiftingRows` needs, from the 16 bytes at `stored` (see
    /// `AES256Portable.shiftRowsMultipliersOffset`).
    static func shiftRowsMultipliers(_ stored: UnsafeRawPointer) -> Self
    /// ShiftRows on one plane: in each lane, the 16-bit field of row r rotates right by 4·r bits.
    func shiftingRows(_ multipliers: Self) -> Self
    /// Each lane rotated right by 16 bits: row r + 1 (mod 4) moves to row r.
    func rotatedByOneRow() -> Self
    /// Each lane rotated by 32 bits: row r + 2 (mod 4) moves to row r.
    func rotatedByTwoRows() -> Self
}

extension UInt64: BitslicedWord {
    /// The value itself (a `UInt64` has a single lane).
    @inline(__always)
    init(broadcasting value: UInt64) { self = value }

    /// The first copy of the plane.
    @inline(__always)
    init(roundKeyPlane: UnsafeRawPointer) { self = roundKeyPlane.load(as: UInt64.self) }

    /// Unused by `UInt64` (its `shiftingRows` needs no constant).
    @inline(__always)
    static func shiftRowsMultipliers(_ stored: UnsafeRawPointer) -> UInt64 { 0 }

    /// Done as a byte swap of the fields of rows 2 and 3 (8 bits), then a 4-bit rotation of the
    /// fields of rows 1 and 3.
    @inline(__always)
    func shiftingRows(_ multipliers: UInt64) -> UInt64 {
        var x = self
        // Swap the two bytes of the 16-bit fields of rows 2 and 3 ("delta swap").
        let swapped = (x ^ (x &>> 8)) & 0x00FF_00FF_0000_0000
        x ^= swapped ^ (swapped &<< 8)
        // Rotate the 16-bit fields of rows 1 and 3 right by 4 bits.
        return (x & 0x0000_FFFF_0000_FFFF)
            | ((x &>> 4) & 0x0FFF_0000_0FFF_0000)
            | ((x &<< 12) & 0xF000_0000_F000_0000)
    }

    @inline(__always)
    func rotatedByOneRow() -> UInt64 { (self &>> 16) | (self &<< 48) }

    @inline(__always)
    func rotatedByTwoRows() -> UInt64 { (self &>> 32) | (self &<< 32) }
}

/// Two 64-bit planes side by side in one 128-bit vector register.
///
/// Why not `SIMD2<UInt64>` itself: the standard library implements its `&`, `|`, `^`, `~` as
/// per-lane loops, and in a circuit as large as the S-box LLVM leaves them as scalar code (the
/// result was slower than plain `UInt64`). The standard library's `SIMDMask<SIMD2<Int64>>`
/// operators `.&`, `.|`, `.^`, `.!` are written directly as vector instructions, and a mask
/// may hold any bit pattern in its lanes, so the planes are kept in one. Shifts go through
/// the `SIMD2<Int64>` storage: a left shift is a wrapping multiplication by 2^n (a vector
/// builtin that LLVM emits as a vector shift), a right shift is written per lane, which LLVM
/// folds into one vector shift as well.
struct PlanePair: BitslicedWord {
    /// The two planes, as the bit patterns of the mask's `Int64` lanes.
    var bits: SIMDMask<SIMD2<Int64>>

    /// Wraps vector bits.
    @inline(__always)
    init(bits: SIMDMask<SIMD2<Int64>>) { self.bits = bits }

    /// Plane `first` in lane 0, plane `second` in lane 1.
    @inline(__always)
    init(_ first: UInt64, _ second: UInt64) {
        bits = SIMDMask(SIMD2<Int64>(Int64(bitPattern: first), Int64(bitPattern: second)))
    }

    /// `value` in both lanes.
    @inline(__always)
    init(broadcasting value: UInt64) { bits = SIMDMask(SIMD2<Int64>(repeating: Int64(bitPattern: value))) }

    /// The plane in lane 0.
    @inline(__always)
    var first: UInt64 { UInt64(bitPattern: bits._storage.x) }

    /// The plane in lane 1.
    @inline(__always)
    var second: UInt64 { UInt64(bitPattern: bits._storage.y) }

    @inline(__always)
    static func & (lhs: Self, rhs: Self) -> Self { Self(bits: lhs.bits .& rhs.bits) }

    @inline(__always)
    static func | (lhs: Self, rhs: Self) -> Self { Self(bits: lhs.bits .| rhs.bits) }

    @inline(__always)
    static func ^ (lhs: Self, rhs: Self) -> Self { Self(bits: lhs.bits .^ rhs.bits) }

    @inline(__always)
    static prefix func ~ (operand: Self) -> Self { Self(bits: .!operand.bits) }

    @inline(__always)
    static func &<< (lhs: Self, rhs: UInt64) -> Self {
        // x · 2^n keeps the low 64 - n bits moved up by n: exactly x << n in each lane.
        Self(bits: SIMDMask(lhs.bits._storage &* SIMD2<Int64>(repeating: Int64(bitPattern: 1 &<< rhs))))
    }

    @inline(__always)
    static func &>> (lhs: Self, rhs: UInt64) -> Self {
        Self(lhs.first &>> rhs, lhs.second &>> rhs)
    }

    /// The register as 16 bytes in memory order: plane 0 (`first`) in bytes 0...7, little-endian.
    @inline(__always)
    var bytes: SIMD16<UInt8> {
        let planes = SIMD2<UInt64>(first.littleEndian, second.littleEndian)
        return unsafeBitCast(planes, to: SIMD16<UInt8>.self)
    }

    /// The register holding 16 bytes given in memory order (the inverse of `bytes`).
    @inline(__always)
    init(bytes: SIMD16<UInt8>) {
        let planes = unsafeBitCast(bytes, to: SIMD2<UInt64>.self)
        self.init(UInt64(littleEndian: planes.x), UInt64(littleEndian: planes.y))
    }

    /// The register seen as eight 16-bit lanes: on a little-endian machine lanes 0...3 are
    /// rows 0...3 of the first plane, lanes 4...7 those of the second (the three row operations
    /// below rely on that, and fall back to per-plane `UInt64` code on big-endian machines).
    @inline(__always)
    var rows: SIMD8<UInt16> { unsafeBitCast(bits._storage, to: SIMD8<UInt16>.self) }

    /// The register holding the given eight 16-bit rows (see `rows`).
    @inline(__always)
    init(rows: SIMD8<UInt16>) { bits = SIMDMask(unsafeBitCast(rows, to: SIMD2<Int64>.self)) }

    /// Both copies of the plane in one aligned 16-byte load.
    @inline(__always)
    init(roundKeyPlane: UnsafeRawPointer) { bits = SIMDMask(roundKeyPlane.load(as: SIMD2<Int64>.self)) }

    /// The per-row multipliers 2^(16 − 4·r) mod 2^16 = (1, 2^12, 2^8, 2^4) in both planes.
    @inline(__always)
    static func shiftRowsMultipliers(_ stored: UnsafeRawPointer) -> PlanePair { PlanePair(roundKeyPlane: stored) }

    /// A right rotation of row r's field by 4·r bits is a left rotation by k = 16 − 4·r, and
    /// rotating a 16-bit x left by k is (x · 2^k mod 2^16) | ⌊x · 2^k / 2^16⌋: the low and high
    /// halves of one 16×16-bit product. So ShiftRows is two vector multiplications (SSE2
    /// `pmullw` and `pmulhuw`, fixed-latency, multiplier public) and an OR. The multipliers
    /// are loaded from memory rather than written as literals: with constant multipliers the
    /// compiler rewrites the high half into per-lane shifts by different amounts, which SSE2
    /// lacks, and falls back to slow per-lane scalar code.
    @inline(__always)
    func shiftingRows(_ multipliers: PlanePair) -> PlanePair {
        #if _endian(little)
        let x = rows, factors = multipliers.rows
        var carried = SIMD8<UInt16>()
        for lane in 0..<8 { carried[lane] = x[lane].multipliedFullWidth(by: factors[lane]).high }
        return PlanePair(rows: x &* factors) | PlanePair(rows: carried)
        #else
        return PlanePair(first.shiftingRows(0), second.shiftingRows(0))
        #endif
    }

    /// A permutation of 16-bit lanes (SSE2 `pshuflw` + `pshufhw`).
    @inline(__always)
    func rotatedByOneRow() -> PlanePair {
        #if _endian(little)
        let x = rows
        return PlanePair(rows: SIMD8(x[1], x[2], x[3], x[0], x[5], x[6], x[7], x[4]))
        #else
        return PlanePair(first.rotatedByOneRow(), second.rotatedByOneRow())
        #endif
    }

    /// A permutation of 32-bit lanes (SSE2 `pshufd`).
    @inline(__always)
    func rotatedByTwoRows() -> PlanePair {
        #if _endian(little)
        let x = rows
        return PlanePair(rows: SIMD8(x[2], x[3], x[0], x[1], x[6], x[7], x[4], x[5]))
        #else
        return PlanePair(first.rotatedByTwoRows(), second.rotatedByTwoRows())
        #endif
    }
}

/// AES states in bitsliced form: plane `qb` holds bit b of every byte; in each 64-bit lane the
/// byte at (block k, row r, column c) is at bit position 16·r + 4·c + k.
struct BitslicedState<Word: BitslicedWord> {
    var q0: Word, q1: Word, q2: Word, q3: Word
    var q4: Word, q5: Word, q6: Word, q7: Word

    /// The state with the given planes.
    @inline(__always)
    init(_ q0: Word, _ q1: Word, _ q2: Word, _ q3: Word, _ q4: Word, _ q5: Word, _ q6: Word, _ q7: Word) {
        self.q0 = q0; self.q1 = q1; self.q2 = q2; self.q3 = q3
        self.q4 = q4; self.q5 = q5; self.q6 = q6; self.q7 = q7
    }

    /// Transposes the 8×8 bit matrix at each byte position (bit b of word k ↔ bit k of word b);
    /// its own inverse. Three rounds of "swap-move" exchange 1-, 2- and 4-bit groups.
    @inline(__always)
    mutating func transpose() {
        @inline(__always) func swap(_ a: inout Word, _ b: inout Word, _ mask: UInt64, _ shift: UInt64) {
            let x = a, y = b, m = Word(broadcasting: mask), notM = Word(broadcasting: ~mask)
            a = (x & m) | ((y & m) &<< shift)
            b = ((x &>> shift) & m) | (y & notM)
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

    /// AddRoundKey: XOR with one bitsliced round key (8 planes of 64 bits, the same round key in
    /// all four block slots, each plane stored twice in 16 bytes), applied to every lane.
    @inline(__always)
    mutating func addRoundKey(_ key: UnsafeRawPointer) {
        @inline(__always) func plane(_ index: Int) -> Word {
            Word(roundKeyPlane: key + AES256Portable.planeStride * index)
        }
        q0 = q0 ^ plane(0); q1 = q1 ^ plane(1); q2 = q2 ^ plane(2); q3 = q3 ^ plane(3)
        q4 = q4 ^ plane(4); q5 = q5 ^ plane(5); q6 = q6 ^ plane(6); q7 = q7 ^ plane(7)
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
    /// field rotates right by 4·r bits (column c takes the byte from column c + r).
    @inline(__always)
    mutating func shiftRows(_ multipliers: Word) {
        q0 = q0.shiftingRows(multipliers); q1 = q1.shiftingRows(multipliers)
        q2 = q2.shiftingRows(multipliers); q3 = q3.shiftingRows(multipliers)
        q4 = q4.shiftingRows(multipliers); q5 = q5.shiftingRows(multipliers)
        q6 = q6.shiftingRows(multipliers); q7 = q7.shiftingRows(multipliers)
    }

    /// MixColumns: out[r] = 2·a[r] ⊕ 3·a[r+1] ⊕ a[r+2] ⊕ a[r+3] = 2·z ⊕ a[r+1] ⊕ z[r+2] with
    /// z = a[r] ⊕ a[r+1]. Rotating a lane right by 16 bits brings row r+1 to row r; by 32, row r+2.
    /// Doubling in GF(2^8) moves plane b to b+1 and folds plane 7 into planes 0, 1, 3, 4 (0x1B).
    @inline(__always)
    mutating func mixColumns() {
        @inline(__always) func rotate16(_ x: Word) -> Word { x.rotatedByOneRow() }
        @inline(__always) func rotate32(_ x: Word) -> Word { x.rotatedByTwoRows() }
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

    /// Encrypts the blocks held in the state (FIPS 197 §5.1 with Nr = 14) with a schedule laid
    /// out by `AES256Portable.expandKey`.
    @inline(__always)
    mutating func encrypt(_ schedule: UnsafeRawPointer) {
        @inline(__always) func roundKey(_ round: Int) -> UnsafeRawPointer {
            schedule + AES256Portable.roundKeyStride * round
        }
        addRoundKey(roundKey(0))
        for round in 1..<14 {
            substituteBytes()
            shiftRows(Word.shiftRowsMultipliers(roundKey(round) + AES256Portable.shiftRowsMultipliersOffset))
            mixColumns()
            addRoundKey(roundKey(round))
        }
        substituteBytes()
        shiftRows(Word.shiftRowsMultipliers(roundKey(14) + AES256Portable.shiftRowsMultipliersOffset))
        addRoundKey(roundKey(14))
    }
}
