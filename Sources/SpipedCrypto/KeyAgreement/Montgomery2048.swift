/// Arithmetic modulo the RFC 3526 group-14 prime p, in Montgomery form with R = 2^2100.
///
/// Outside this type numbers are 32 little-endian 64-bit limbs (`limbCount`, limb 0 least
/// significant). Inside, residues are 35 limbs of 60 bits (`residueLimbCount`, radix 2^60,
/// 2100 bits): with 60-bit limbs a column of a product scan sums at most 70 products below
/// 2^120 plus a carry below 2^68, which stays below 2^127, so a column fits in one `UInt128`
/// and each limb product costs one multiplication and one 128-bit addition (no third carry
/// word). Every operation works through one `Montgomery2048.Workspace`, allocated once per
/// exponentiation and wiped before it is freed, so the inner loops never allocate.
///
/// Residues are kept below 2p, not below p ("lazy" reduction): since R = 2^2100 > 4p, a
/// Montgomery product of two values below 2p is again below 2p without a final subtraction.
/// Only the conversion out of Montgomery form makes the value fully reduced.
///
/// Constant time: every function here runs the same instructions, and touches the same
/// addresses, for all values of the same public sizes. Loop bounds depend only on limb counts;
/// carries are propagated arithmetically; the data-dependent decisions (subtracting p or 2p)
/// are mask selects. Nothing here branches on a limb's value.
///
/// Two properties of p are used:
/// - p ≡ -1 (mod 2^64) (its low 64 bits are all ones), so p ≡ -1 (mod 2^60): the Montgomery
///   constant -p⁻¹ mod 2^60 is 1, each reduction multiplier m[k] is simply the low 60 bits of
///   column k, and adding m[k]·p[0] = m[k]·2^60 - m[k] to a column whose low 60 bits equal
///   m[k] clears them and carries m[k]: that product needs no multiplication.
/// - 2^2047 < p < 2^2048, so every 2048-bit input is below 2p, and 4p < R.
enum Montgomery2048 {
    /// 64-bit limbs in a 2048-bit number (the external format).
    static let limbCount = 32
    /// 60-bit limbs in a residue (the internal format, 2100 bits).
    static let residueLimbCount = 35
    /// Bits per residue limb.
    static let residueLimbBits = 60
    /// The low 60 bits.
    static let residueLimbMask: UInt64 = (1 << 60) - 1

    /// p as little-endian 64-bit limbs (the hex of RFC 3526 section 3, read from the right).
    static let modulusLimbs: [UInt64] = [
        0xFFFFFFFFFFFFFFFF, 0x15728E5A8AACAA68, 0x15D2261898FA0510, 0x3995497CEA956AE5,
        0xDE2BCBF695581718, 0xB5C55DF06F4C52C9, 0x9B2783A2EC07A28F, 0xE39E772C180E8603,
        0x32905E462E36CE3B, 0xF1746C08CA18217C, 0x670C354E4ABC9804, 0x9ED529077096966D,
        0x1C62F356208552BB, 0x83655D23DCA3AD96, 0x69163FA8FD24CF5F, 0x98DA48361C55D39A,
        0xC2007CB8A163BF05, 0x49286651ECE45B3D, 0xAE9F24117C4B1FE6, 0xEE386BFB5A899FA5,
        0x0BFF5CB6F406B7ED, 0xF44C42E9A637ED6B, 0xE485B576625E7EC6, 0x4FE1356D6D51C245,
        0x302B0A6DF25F1437, 0xEF9519B3CD3A431B, 0x514A08798E3404DD, 0x020BBEA63B139B22,
        0x29024E088A67CC74, 0xC4C6628B80DC1CD1, 0xC90FDAA22168C234, 0xFFFFFFFFFFFFFFFF,
    ]

    /// R mod p = 2^2100 mod p (64-bit limbs): the Montgomery form of 1.
    static let montgomeryOneLimbs: [UInt64] = powerOfTwoModulo(2100)

    /// R² mod p = 2^4200 mod p (64-bit limbs), the factor that brings a number into Montgomery form.
    static let rSquaredLimbs: [UInt64] = powerOfTwoModulo(4200)

    /// Residue-format copies of the constants above, and 2p (for the doubling's reduction).
    static let residueConstants: ResidueConstants = ResidueConstants()

    /// p, 2p, R mod p and R² mod p as 35 radix-2^60 limbs each (public constants).
    struct ResidueConstants: Sendable {
        /// p.
        let modulus: [UInt64]
        /// 2p.
        let twiceModulus: [UInt64]
        /// R mod p.
        let one: [UInt64]
        /// R² mod p.
        let rSquared: [UInt64]

        init() {
            func residue(_ limbs: [UInt64]) -> [UInt64] {
                var result = [UInt64](repeating: 0, count: Montgomery2048.residueLimbCount)
                limbs.withUnsafeBufferPointer { source in
                    result.withUnsafeMutableBufferPointer { target in
                        Montgomery2048.toResidue(target.baseAddress!, from: source.baseAddress!)
                    }
                }
                return result
            }
            modulus = residue(Montgomery2048.modulusLimbs)
            one = residue(Montgomery2048.montgomeryOneLimbs)
            rSquared = residue(Montgomery2048.rSquaredLimbs)
            // 2p < 2^2049: double limb by limb and carry in radix 2^60.
            var doubled = [UInt64](repeating: 0, count: Montgomery2048.residueLimbCount)
            var carry: UInt64 = 0
            for k in 0..<Montgomery2048.residueLimbCount {
                let sum = (modulus[k] &<< 1) &+ carry
                doubled[k] = sum & Montgomery2048.residueLimbMask
                carry = sum &>> 60
            }
            twiceModulus = doubled
        }
    }

    /// 2^exponent mod p as 64-bit limbs, by doubling 1 `exponent` times (public constants only).
    static func powerOfTwoModulo(_ exponent: Int) -> [UInt64] {
        var value = [UInt64](repeating: 0, count: limbCount)
        value[0] = 1
        value.withUnsafeMutableBufferPointer { buffer in
            let limbs = buffer.baseAddress!
            for _ in 0..<exponent {
                var carry: UInt64 = 0
                for k in 0..<limbCount {
                    let doubled = (UInt128(limbs[k]) &<< 1) | UInt128(carry)
                    limbs[k] = UInt64(truncatingIfNeeded: doubled)
                    carry = UInt64(truncatingIfNeeded: doubled &>> 64)
                }
                subtractModulusIfNeeded(limbs, topBit: carry)
            }
        }
        return value
    }

    /// value = (topBit·2^2048 + value) mod p for 32 64-bit limbs holding less than 2p, in
    /// constant time: value - p is always computed and a mask picks it when there was no borrow
    /// or when `topBit` is set.
    static func subtractModulusIfNeeded(_ value: UnsafeMutablePointer<UInt64>, topBit: UInt64) {
        modulusLimbs.withUnsafeBufferPointer { modulus in
            let p = modulus.baseAddress!
            // Pass 1: the final borrow of value - p, without storing the difference.
            var borrow: UInt64 = 0
            for k in 0..<limbCount {
                // value - p - borrow wraps modulo 2^128; bit 64 and up are all ones on borrow.
                let d = UInt128(value[k]) &- UInt128(p[k]) &- UInt128(borrow)
                borrow = UInt64(truncatingIfNeeded: d &>> 64) & 1
            }
            // Subtract p masked: p when value ≥ p (no borrow, or a set bit 2048 absorbed it).
            let mask = ConstantTime.mask(fromBit: topBit | (borrow ^ 1))
            borrow = 0
            for k in 0..<limbCount {
                let d = UInt128(value[k]) &- UInt128(p[k] & mask) &- UInt128(borrow)
                value[k] = UInt64(truncatingIfNeeded: d)
                borrow = UInt64(truncatingIfNeeded: d &>> 64) & 1
            }
        }
    }

    // MARK: Radix conversions (constant time; positions depend only on public indices)

    /// residue = the 2048-bit `limbs` (32 64-bit limbs) split into 35 limbs of 60 bits.
    static func toResidue(_ residue: UnsafeMutablePointer<UInt64>, from limbs: UnsafePointer<UInt64>) {
        for k in 0..<residueLimbCount {
            // Residue limb k is bits 60k ..< 60k + 60: from 64-bit limb 60k / 64 and the next.
            let bit = k &* residueLimbBits
            let word = bit &>> 6, shift = bit & 63
            let high = word &+ 1 < limbCount ? limbs[word &+ 1] : 0
            let pair = UInt128(high) &<< 64 | UInt128(limbs[word])
            residue[k] = UInt64(truncatingIfNeeded: pair &>> shift) & residueLimbMask
        }
    }

    /// limbs = the 35-limb residue as 32 64-bit limbs; the residue must be normalized (limbs
    /// 0...33 below 2^60) and below 2^2048.
    static func fromResidue(_ limbs: UnsafeMutablePointer<UInt64>, from residue: UnsafePointer<UInt64>) {
        for word in 0..<limbCount {
            // Bits 64w ..< 64w + 64 start at bit 64w mod 60 (≤ 56) of residue limb 64w / 60,
            // so that limb and the next one hold all 64 of them.
            let bit = word &* 64
            let k = bit / residueLimbBits, shift = bit % residueLimbBits
            let pair = UInt128(residue[k &+ 1]) &<< 60 | UInt128(residue[k])
            limbs[word] = UInt64(truncatingIfNeeded: pair &>> shift)
        }
    }

    /// Scratch memory for one exponentiation: a copy of p, the multiplication scratch, the
    /// window table and the working residues. Holds secret-derived values: `release()` wipes it.
    struct Workspace {
        /// Entries in the table: the fixed-window powers (window of 4 bits).
        static let tableEntryCount = 16
        /// Width of the exponent windows in bits.
        static let windowBitCount = 4
        /// Limbs in a residue (35).
        static let n = Montgomery2048.residueLimbCount

        /// Limbs multiplied per step of a row (`addRow`): 35 = 5 steps of 7.
        static let rowStep = 7
        /// 128-bit column sums: 69 columns, plus room for the rounded-up rows of a squaring.
        static let columnCount = 76

        /// The single allocation the limb buffers below point into.
        private let storage: UnsafeMutablePointer<UInt64>
        private static let totalLimbCount = n + n + (n + rowStep) + tableEntryCount * n + n + n
        /// p with its lowest limb replaced by 0 (35 limbs): a reduction row (see `reduce`).
        let modulusAboveLowLimb: UnsafeMutablePointer<UInt64>
        /// 2p (35 residue limbs).
        let twiceModulus: UnsafeMutablePointer<UInt64>
        /// A copy of the value being squared followed by `rowStep` zero limbs (see `square`).
        let squareOperand: UnsafeMutablePointer<UInt64>
        /// `tableEntryCount` residues of 35 limbs each, in Montgomery form: base^0 ... base^15.
        let table: UnsafeMutablePointer<UInt64>
        /// The running result (35 limbs).
        let accumulator: UnsafeMutablePointer<UInt64>
        /// The table entry selected for the current window (35 limbs).
        let selected: UnsafeMutablePointer<UInt64>
        /// The unreduced product: column k's sum Σ a[i]·b[k-i] (+ Σ m[i]·p[k-i]) in `columns[k]`.
        let columns: UnsafeMutablePointer<UInt128>

        /// Allocates the scratch space (all zeros) and copies the constants into it.
        init() {
            let n = Workspace.n
            storage = UnsafeMutablePointer<UInt64>.allocate(capacity: Workspace.totalLimbCount)
            storage.initialize(repeating: 0, count: Workspace.totalLimbCount)
            modulusAboveLowLimb = storage
            twiceModulus = modulusAboveLowLimb + n
            squareOperand = twiceModulus + n
            table = squareOperand + n + Workspace.rowStep
            accumulator = table + Workspace.tableEntryCount * n
            selected = accumulator + n
            columns = UnsafeMutablePointer<UInt128>.allocate(capacity: Workspace.columnCount)
            columns.initialize(repeating: 0, count: Workspace.columnCount)
            let constants = Montgomery2048.residueConstants
            constants.modulus.withUnsafeBufferPointer { modulusAboveLowLimb.update(from: $0.baseAddress!, count: n) }
            modulusAboveLowLimb[0] = 0
            constants.twiceModulus.withUnsafeBufferPointer { twiceModulus.update(from: $0.baseAddress!, count: n) }
        }

        /// Wipes and frees the scratch space; the workspace must not be used afterwards.
        func release() {
            SecureWipe.wipe(storage, count: Workspace.totalLimbCount)
            storage.deallocate()
            SecureWipe.wipe(UnsafeMutableRawPointer(columns).assumingMemoryBound(to: UInt64.self),
                            count: 2 * Workspace.columnCount)
            columns.deallocate()
        }

        // MARK: Montgomery multiplication and squaring
        //
        // Operand scanning into 128-bit column sums, then a separate Montgomery reduction, also
        // by rows. With 60-bit limbs a column never exceeds 70 products below 2^121 (plus a
        // carry below 2^70 when it is read), far below 2^128, so the rows add limb products into
        // the column sums without propagating any carry (one multiplication and one 128-bit
        // add to memory per product), and carries are propagated once per column by `reduce`.
        //
        // Constant time: every loop bound is a public constant or depends only on the row index.

        /// result = a · b · R⁻¹ (mod p), below 2p for a, b < 2p (normalized limbs).
        /// `result` may alias `a` or `b`: they are read before `result` is written.
        func multiply(_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>) {
            clearColumns()
            for i in 0..<Workspace.n {
                // Row i: columns i ... i + 34 get a[i]·b[0...34].
                Workspace.addRow(columns + i, factor: a[i], times: b, steps: 5)
            }
            reduce(result)
        }

        /// result = a² · R⁻¹ (mod p), below 2p for a < 2p. `result` may alias `a`.
        ///
        /// Each cross product a[i]·a[j] (i < j) is taken once, as (2·a[i])·a[j], and the
        /// squares a[i]² are added to column 2i: 630 limb products instead of 1225, before the
        /// reduction. 2·a[i] < 2^61, so a column stays below 2^127. Row i covers j = i+1 ... 34
        /// rounded up to whole steps of 7 limbs; the extra limbs read are zeros after the copy
        /// in `squareOperand`.
        func square(_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>) {
            let x = squareOperand
            x.update(from: a, count: Workspace.n)
            clearColumns()
            for i in 0..<(Workspace.n &- 1) {
                let steps = (Workspace.n &- 1 &- i &+ Workspace.rowStep &- 1) / Workspace.rowStep
                Workspace.addRow(columns + (2 &* i &+ 1), factor: x[i] &<< 1, times: x + (i &+ 1), steps: steps)
            }
            for i in 0..<Workspace.n {
                columns[2 &* i] &+= UInt128(x[i]) &* UInt128(x[i])
            }
            reduce(result)
        }

        /// Sets the column sums to zero.
        @inline(__always)
        func clearColumns() {
            for k in 0..<Workspace.columnCount { columns[k] = 0 }
        }

        /// columns[j] += factor · y[j] for j in 0 ..< 7·steps (the row of one limb of a product).
        @inline(__always)
        static func addRow(_ columns: UnsafeMutablePointer<UInt128>, factor: UInt64, times y: UnsafePointer<UInt64>, steps: Int) {
            var column = columns, limb = y
            let f = UInt128(factor)
            for _ in 0..<steps {
                column[0] &+= f &* UInt128(limb[0])
                column[1] &+= f &* UInt128(limb[1])
                column[2] &+= f &* UInt128(limb[2])
                column[3] &+= f &* UInt128(limb[3])
                column[4] &+= f &* UInt128(limb[4])
                column[5] &+= f &* UInt128(limb[5])
                column[6] &+= f &* UInt128(limb[6])
                column += 7
                limb += 7
            }
        }

        /// result = (Σ columns[k]·2^(60k)) · R⁻¹ (mod p), below 2p when that sum is below R·p.
        ///
        /// Montgomery reduction a limb at a time: with the carry c from below, column i's low
        /// 60 bits m = (columns[i] + c) mod 2^60 are cleared by adding m·p·2^(60i) (as
        /// -p⁻¹ mod 2^60 = 1). The m·p[0] part is done arithmetically (m·2^60 - m: the carry
        /// grows by m), the rest as a row m·p[1...34] into columns i+1 ... i+34. Columns 35...68
        /// then hold the result, normalized to 60-bit limbs by one carry pass.
        @inline(__always)
        func reduce(_ result: UnsafeMutablePointer<UInt64>) {
            let mask = Montgomery2048.residueLimbMask
            var carry: UInt128 = 0
            for i in 0..<Workspace.n {
                let column = columns[i] &+ carry
                let m = UInt64(truncatingIfNeeded: column) & mask
                carry = (column &>> 60) &+ UInt128(m)
                // modulusAboveLowLimb[0] = 0: the row's first product adds nothing.
                Workspace.addRow(columns + i, factor: m, times: modulusAboveLowLimb, steps: 5)
            }
            for k in Workspace.n..<(2 &* Workspace.n &- 1) {
                let column = columns[k] &+ carry
                result[k &- Workspace.n] = UInt64(truncatingIfNeeded: column) & mask
                carry = column &>> 60
            }
            // The rest (below 2^9, as the result is below 2p < 2^2049) is the top limb.
            result[Workspace.n &- 1] = UInt64(truncatingIfNeeded: carry)
        }

        /// value = (bit == 1 ? 2·value : value), reduced below 2p again, for value < 2p and bit
        /// 0 or 1. Adds `value & mask` to itself (no branch, no secret-dependent shift), then
        /// subtracts 2p under a mask when the sum is at least 2p.
        func conditionalDouble(_ value: UnsafeMutablePointer<UInt64>, bit: UInt64) {
            let n = Workspace.n, limbMask = Montgomery2048.residueLimbMask
            let addend = ConstantTime.mask(fromBit: bit)
            var carry: UInt64 = 0
            for k in 0..<n {
                // Limbs are below 2^60, so the sum is below 2^61 + 1: no overflow.
                let sum = value[k] &+ (value[k] & addend) &+ carry
                value[k] = k == n - 1 ? sum : sum & limbMask
                carry = sum &>> 60
            }
            // Borrow of value - 2p, limb by limb: a negative limb difference has its top bit set.
            var borrow: UInt64 = 0
            for k in 0..<n {
                borrow = (value[k] &- twiceModulus[k] &- borrow) &>> 63
            }
            let subtract = ConstantTime.mask(fromBit: borrow ^ 1)
            borrow = 0
            for k in 0..<n {
                let difference = value[k] &- (twiceModulus[k] & subtract) &- borrow
                borrow = difference &>> 63
                value[k] = k == n - 1 ? difference : difference & limbMask
            }
        }

        /// value = R mod p (the Montgomery form of 1).
        func setMontgomeryOne(_ value: UnsafeMutablePointer<UInt64>) {
            Montgomery2048.residueConstants.one.withUnsafeBufferPointer {
                value.update(from: $0.baseAddress!, count: Workspace.n)
            }
        }

        /// result (32 64-bit limbs) = value · R⁻¹ mod p, fully reduced (< p): a Montgomery
        /// multiplication with the plain number 1 gives a value ≤ p, then one masked
        /// subtraction of p. Uses `product`, `selected`.
        func leaveMontgomeryForm(_ result: UnsafeMutablePointer<UInt64>, _ value: UnsafePointer<UInt64>) {
            let one = selected
            one.update(repeating: 0, count: Workspace.n)
            one[0] = 1
            // (value + M·p)/R < (2p + R·p)/R < p + 1.
            multiply(one, value, one)
            Montgomery2048.fromResidue(result, from: one)
            Montgomery2048.subtractModulusIfNeeded(result, topBit: 0)
        }

        /// selected = table[index] of the workspace's 16-entry table (see `selectEntry`).
        func selectTableEntry(_ index: UInt64) {
            selectEntry(index, from: table, entryCount: Workspace.tableEntryCount)
        }

        /// selected = entry `index` of `entryCount` consecutive 35-limb entries at `entries`,
        /// reading every entry and combining them with masks, so neither the addresses read nor
        /// the branches taken depend on the secret index.
        func selectEntry(_ index: UInt64, from entries: UnsafePointer<UInt64>, entryCount: Int) {
            let n = Workspace.n
            for k in 0..<n { selected[k] = 0 }
            for entry in 0..<entryCount {
                let mask = ConstantTime.equalMask(UInt64(entry), index)
                let row = entries + entry * n
                for k in 0..<n {
                    selected[k] |= row[k] & mask
                }
            }
        }
    }

    // MARK: Exponentiation

    /// result = base^exponent mod p, as 32 plain (non-Montgomery) 64-bit limbs, fully reduced.
    ///
    /// `base` is 32 plain limbs, any value below 2^2048 (below 2p, which the arithmetic accepts).
    /// `exponent` is big-endian bytes of any length (empty means 0, giving 1).
    ///
    /// Fixed 4-bit windows from the most significant nibble: the table holds base^0 ... base^15;
    /// each window is four squarings and one multiplication by the masked-selected entry (also
    /// for a zero nibble, which multiplies by 1). The sequence of operations depends only on the
    /// exponent's byte length, never on its bits or on the base.
    static func power(
        _ result: UnsafeMutablePointer<UInt64>, base: UnsafePointer<UInt64>, exponent: UnsafeRawBufferPointer
    ) {
        let workspace = Workspace()
        defer { workspace.release() }
        let n = Workspace.n
        residueConstants.rSquared.withUnsafeBufferPointer { rSquared in
            let table = workspace.table
            // table[0] = 1, table[1] = base·R² ·R⁻¹ = base·R (Montgomery form; base < 2p suffices).
            workspace.setMontgomeryOne(table)
            toResidue(workspace.selected, from: base)
            workspace.multiply(table + n, workspace.selected, rSquared.baseAddress!)
            for entry in 2..<Workspace.tableEntryCount {
                let destination = table + entry * n
                if entry % 2 == 0 {
                    // Public index: base^(2k) = (base^k)².
                    workspace.square(destination, table + (entry / 2) * n)
                } else {
                    workspace.multiply(destination, table + (entry - 1) * n, table + n)
                }
            }
        }
        let accumulator = workspace.accumulator
        workspace.setMontgomeryOne(accumulator)
        var first = true
        for byte in exponent {
            for half in 0..<2 {
                // High nibble first, then the low one (public positions, secret values).
                let nibble = UInt64((byte &>> UInt8(4 - 4 * half)) & 0x0F)
                if first {
                    // The first window needs no squarings of 1 (the same for every exponent).
                    first = false
                    workspace.selectTableEntry(nibble)
                    accumulator.update(from: workspace.selected, count: n)
                    continue
                }
                for _ in 0..<Workspace.windowBitCount {
                    workspace.square(accumulator, accumulator)
                }
                workspace.selectTableEntry(nibble)
                workspace.multiply(accumulator, accumulator, workspace.selected)
            }
        }
        workspace.leaveMontgomeryForm(result, accumulator)
    }

    /// result = 2^exponent mod p, as plain limbs, fully reduced: the base-2 path for exponent
    /// lengths without a comb table (all but 32 bytes, e.g. the reference's 259-bit 2^258 + r).
    ///
    /// Left to right over every bit of `exponent` (big-endian bytes): one squaring, then a
    /// conditional doubling (add the value to itself masked by the bit, subtract 2p by mask).
    /// A doubling costs a small fraction of a squaring, so this is nearly the cost of the
    /// squarings alone. Same operations for every exponent of the same byte length.
    static func powerOfTwo(_ result: UnsafeMutablePointer<UInt64>, exponent: UnsafeRawBufferPointer) {
        let workspace = Workspace()
        defer { workspace.release() }
        let accumulator = workspace.accumulator
        workspace.setMontgomeryOne(accumulator)
        for byte in exponent {
            for shift in stride(from: 7, through: 0, by: -1) {
                workspace.square(accumulator, accumulator)
                workspace.conditionalDouble(accumulator, bit: UInt64((byte &>> UInt8(shift)) & 1))
            }
        }
        workspace.leaveMontgomeryForm(result, accumulator)
    }

    // MARK: Fixed-base comb for base 2

    /// Exponent length (bytes) that has a precomputed comb table: `DHPrivateExponent()`'s 32.
    static let combExponentByteCount = 32
    /// Teeth of the comb: the 256-bit exponent is cut into this many pieces (table of 2^6 entries).
    static let combTeethCount = 6
    /// Entries in the comb table.
    static let combEntryCount = 1 << combTeethCount
    /// Bits per piece, the comb's spacing: ⌈256 / 6⌉ = 43 (the last piece has 41 real bits).
    static let combSpacing = (combExponentByteCount * 8 + combTeethCount - 1) / combTeethCount

    /// Lim–Lee comb table for 2^e with 256-bit e, in Montgomery form (64 entries × 35 limbs):
    /// entry s = 2^(Σ_t s_t · 2^(43t)), the product of 2^(2^(43t)) over the bits t set in s.
    /// Public constants (they depend only on p and the generator), computed at first use:
    /// 215 squarings and 57 multiplications.
    static let combTableLimbs: [UInt64] = {
        let n = Workspace.n
        let workspace = Workspace()
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: combEntryCount * n)
        defer {
            workspace.release()
            table.deallocate()
        }
        workspace.setMontgomeryOne(table)
        (table + n).update(from: table, count: n)
        workspace.conditionalDouble(table + n, bit: 1)
        for tooth in 1..<combTeethCount {
            let destination = table + (1 << tooth) * n
            destination.update(from: table + (1 << (tooth - 1)) * n, count: n)
            for _ in 0..<combSpacing {
                workspace.square(destination, destination)
            }
        }
        for entry in 3..<combEntryCount where entry & (entry - 1) != 0 {
            let lowestBit = entry & (0 &- entry)
            workspace.multiply(table + entry * n, table + (entry - lowestBit) * n, table + lowestBit * n)
        }
        return Array(UnsafeBufferPointer(start: table, count: combEntryCount * n))
    }()

    /// result = 2^exponent mod p for a 32-byte big-endian exponent, by the fixed-base comb:
    /// 43 steps, each one squaring (none in the first) and one multiplication by the table
    /// entry whose index gathers bit j of each 43-bit piece of the exponent. The entry is
    /// picked by a masked scan of all 64 entries (`selectEntry`), so this is constant time in
    /// the exponent: 42 squarings + 43 multiplications instead of 256 squarings + 256 doublings.
    static func powerOfTwoComb(_ result: UnsafeMutablePointer<UInt64>, exponent: UnsafeRawBufferPointer) {
        precondition(exponent.count == combExponentByteCount, "comb table is for 32-byte exponents")
        let workspace = Workspace()
        defer { workspace.release() }
        let accumulator = workspace.accumulator
        combTableLimbs.withUnsafeBufferPointer { table in
            for column in stride(from: combSpacing - 1, through: 0, by: -1) {
                var index: UInt64 = 0
                for tooth in 0..<combTeethCount {
                    // Bit (column + 43·tooth) of the exponent, counted from the least
                    // significant; positions past bit 255 (public) are zero.
                    let bitPosition = column + combSpacing * tooth
                    guard bitPosition < combExponentByteCount * 8 else { continue }
                    let byte = exponent[combExponentByteCount - 1 - bitPosition / 8]
                    index |= UInt64((byte &>> UInt8(bitPosition % 8)) & 1) &<< UInt64(tooth)
                }
                workspace.selectEntry(index, from: table.baseAddress!, entryCount: combEntryCount)
                if column == combSpacing - 1 {
                    accumulator.update(from: workspace.selected, count: Workspace.n)
                } else {
                    workspace.square(accumulator, accumulator)
                    workspace.multiply(accumulator, accumulator, workspace.selected)
                }
            }
        }
        workspace.leaveMontgomeryForm(result, accumulator)
    }

    // MARK: Byte conversions (constant time in the values; loops depend on lengths only)

    /// Reads big-endian bytes (at most 256) into 32 little-endian limbs, zero-extending.
    static func loadLimbs(_ limbs: UnsafeMutablePointer<UInt64>, bigEndian bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= 256, "more than 2048 bits")
        for k in 0..<32 { limbs[k] = 0 }
        let count = bytes.count
        for position in 0..<count {
            // position counts bytes from the least significant end.
            let byte = UInt64(bytes[count - 1 - position])
            limbs[position / 8] |= byte &<< UInt64(8 * (position % 8))
        }
    }

    /// Writes 32 limbs as 256 big-endian bytes.
    static func storeBigEndian(_ limbs: UnsafePointer<UInt64>, into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count == 256, "need exactly 256 bytes")
        for position in 0..<256 {
            let limb = limbs[position / 8]
            bytes[255 - position] = UInt8(truncatingIfNeeded: limb &>> UInt64(8 * (position % 8)))
        }
    }
}
