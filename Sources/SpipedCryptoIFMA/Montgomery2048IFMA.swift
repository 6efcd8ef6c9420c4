import SpipedCrypto
import _Builtin_intrinsics.intel

/// Group-14 Montgomery arithmetic with AVX-512 IFMA (`vpmadd52luq`/`vpmadd52huq`), for CPUs
/// that have AVX512F, AVX512IFMA and AVX512VL and an OS that saves the ZMM and opmask state.
///
/// This target is the only code built with `-mavx512f -mavx512ifma -mavx512vl`: the compiler
/// may use AVX-512 anywhere in it, so it holds nothing but these kernels. Nothing here checks
/// the CPU: call it only after `Montgomery2048IFMAHardware.isSupported` (target
/// SpipedCryptoAccelerated: CPUID, the OS check and a known-answer self-test).
///
/// Representation. A residue is 40 limbs of 52 bits (2080 bits), five 8-lane vectors, and
/// Montgomery form uses R' = 2^2080. `almostMontgomeryMultiply` is almost-Montgomery
/// multiplication (Gueron–Krasnov, as in OpenSSL's rsaz-2k-avx512): for a, b < 2p it returns
/// a·b·R'⁻¹ mod p as a value below 2p, never subtracting p. It cannot exceed 2p because
/// (a·b + M·p)/R' < a·b/R' + p and a·b/R' < 2^4098 / 2^2080 is far below p. So values stay
/// below 2p < 2^2049 through the whole exponentiation, and only the way out subtracts p once.
///
/// Multiplication is operand scanning: for each limb b[i], t += a·b[i] + m·p with the reduction
/// multiplier m = t[0] mod 2^52 (-p⁻¹ ≡ 1 mod 2^52, as p ≡ -1 mod 2^64), then t moves down one
/// limb. The vector lanes hold 64-bit sums of 52-bit halves of products and are normalised
/// (carries moved up) once, after the 40 steps. The lowest lane is followed in a scalar
/// register instead, so finding the next m does not wait for the vector units: what limb 0
/// passes up to limb 1 (its carry and the high half of m·p[0]) is (x >> 52) + m for
/// x = t[0] + low52(a[0]·b[i]), because p[0] = 2^52 - 1.
///
/// Two entry points use it:
/// - `power`: a whole exponentiation (4-bit fixed windows over a 16-entry table kept in the
///   52-bit form, masked table scans), the engine's `Montgomery2048Engine.power`;
/// - `multiply`/`square`: the engine contract (R = 2^2048, 64-bit limbs, fully reduced): convert,
///   one almost-Montgomery multiplication, one more by 2^2112 mod p (turning R'⁻¹ into R⁻¹),
///   convert back and subtract p by mask.
///
/// Constant time: fixed trip counts, addresses that depend only on public indices, carries as
/// data, the table entry and the final subtraction chosen by masks that pass through
/// `ConstantTime.hideFromOptimizer`. Every function touching secrets is `@inline(never)` so
/// `scripts/check-constant-time` can check its machine code.
public enum Montgomery2048IFMA {
    /// 52-bit limbs in one residue.
    static let limbCount = 40
    /// The low 52 bits.
    static let limbMask: UInt64 = (1 << 52) - 1
    /// Entries in the window table (4-bit windows).
    static let tableEntryCount = 16

    /// Scratch words the contract functions need (must not exceed `Montgomery2048Engine.scratchLimbCount`).
    public static let scratchLimbCount = 160

    // MARK: Public constants (52-bit limbs, computed once from p)

    /// Offsets (in words) of the constants in `Constants.words`.
    enum ConstantOffset {
        /// p.
        static let modulus = 0
        /// R'² mod p = 2^4160 mod p: enters Montgomery form.
        static let rSquared = 40
        /// The plain number 1: leaves Montgomery form.
        static let one = 80
        /// 2^2112 mod p: turns a·b·R'⁻¹ into a·b·R⁻¹ (R = 2^2048) for the engine contract.
        static let contractFactor = 120
        /// p as 32 64-bit limbs.
        static let modulus64 = 160
        /// Total words.
        static let total = 192
    }

    /// The constants in one 64-byte aligned allocation that lives as long as the process.
    final class Constants: @unchecked Sendable {
        /// `ConstantOffset.total` words, written once in `init` and only read afterwards.
        let words: UnsafeMutablePointer<UInt64>

        init() {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: 8 * ConstantOffset.total, alignment: 64)
            words = raw.initializeMemory(as: UInt64.self, repeating: 0, count: ConstantOffset.total)
            let p = Montgomery2048Engine.modulusLimbs
            // 2^2048 mod p = 2^2048 - p (p > 2^2047), then doublings mod p. Public values: plain code.
            var power = twosComplement(p)
            var exponent = 2048
            func double(to target: Int) {
                while exponent < target {
                    power = doubleModulo(power, p)
                    exponent += 1
                }
            }
            double(to: 2112)
            store52(power, at: ConstantOffset.contractFactor)
            double(to: 4160)
            store52(power, at: ConstantOffset.rSquared)
            store52(p, at: ConstantOffset.modulus)
            words[ConstantOffset.one] = 1
            (words + ConstantOffset.modulus64).update(from: p, count: 32)
        }

        private func store52(_ limbs: [UInt64], at offset: Int) {
            limbs.withUnsafeBufferPointer { Montgomery2048IFMA.load52(words + offset, from: $0.baseAddress!) }
        }

        /// 2^2048 - x for 32 limbs.
        private func twosComplement(_ x: [UInt64]) -> [UInt64] {
            var result = [UInt64](repeating: 0, count: 32)
            var carry: UInt64 = 1
            for k in 0..<32 {
                let (sum, overflow) = (~x[k]).addingReportingOverflow(carry)
                result[k] = sum
                carry = overflow ? 1 : 0
            }
            return result
        }

        /// 2x mod p for x < p.
        private func doubleModulo(_ x: [UInt64], _ p: [UInt64]) -> [UInt64] {
            var doubled = [UInt64](repeating: 0, count: 32)
            var carry: UInt64 = 0
            for k in 0..<32 {
                doubled[k] = (x[k] << 1) | carry
                carry = x[k] >> 63
            }
            var atLeastP = carry == 1
            if !atLeastP {
                atLeastP = true
                for k in stride(from: 31, through: 0, by: -1) where doubled[k] != p[k] {
                    atLeastP = doubled[k] > p[k]
                    break
                }
            }
            guard atLeastP else { return doubled }
            var borrow: UInt64 = 0
            for k in 0..<32 {
                let (d1, b1) = doubled[k].subtractingReportingOverflow(p[k])
                let (d2, b2) = d1.subtractingReportingOverflow(borrow)
                doubled[k] = d2
                borrow = (b1 || b2) ? 1 : 0
            }
            return doubled
        }
    }

    /// The constants (computed at first use).
    static let constants = Constants()

    // MARK: Engine entry points

    /// Words of `power`'s scratch: base, accumulator, selected entry, masks, the table, the
    /// conversion area.
    enum PowerScratch {
        static let base = 0
        static let accumulator = 40
        static let selected = 80
        static let masks = 120
        static let table = 136
        static let output = table + 16 * 40
        static let total = output + 80
    }

    /// result = base^exponent mod p (see `Montgomery2048Engine.power`): allocates 64-byte
    /// aligned scratch, runs `exponentiate`, wipes and frees the scratch.
    public static func power(_ result: UnsafeMutablePointer<UInt64>, base: UnsafePointer<UInt64>, exponent: UnsafeRawBufferPointer) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 8 * PowerScratch.total, alignment: 64)
        let scratch = raw.initializeMemory(as: UInt64.self, repeating: 0, count: PowerScratch.total)
        defer {
            SecureWipe.wipe(UnsafeMutableRawBufferPointer(start: raw, count: 8 * PowerScratch.total))
            raw.deallocate()
        }
        let exponentStart = exponent.baseAddress?.assumingMemoryBound(to: UInt8.self)
        exponentiate(result, base, exponentStart, exponent.count, scratch, constants.words)
    }

    /// result = a · b · R⁻¹ mod p (R = 2^2048), 64-bit limbs, fully reduced, for a < R, b < p;
    /// see `Montgomery2048Engine`. `modulus` is unused (the 52-bit constants are this engine's).
    /// Scratch: a and b in 52-bit limbs at 0 and 40, the first product at 80, the conversion
    /// area at 40...120 afterwards.
    @inline(never)
    public static func multiply(
        _ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>,
        _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>
    ) {
        let c = constants.words
        load52(scratch, from: a)
        load52(scratch + 40, from: b)
        almostMontgomeryMultiply(scratch + 80, scratch, scratch + 40, c + ConstantOffset.modulus)
        almostMontgomeryMultiply(scratch, scratch + 80, c + ConstantOffset.contractFactor, c + ConstantOffset.modulus)
        storeReduced(result, scratch, c + ConstantOffset.modulus64, scratch + 40)
    }

    /// result = a² · R⁻¹ mod p, for a < p; see `Montgomery2048Engine` and `multiply`.
    @inline(never)
    public static func square(
        _ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>,
        _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>
    ) {
        let c = constants.words
        load52(scratch, from: a)
        almostMontgomeryMultiply(scratch + 80, scratch, scratch, c + ConstantOffset.modulus)
        almostMontgomeryMultiply(scratch, scratch + 80, c + ConstantOffset.contractFactor, c + ConstantOffset.modulus)
        storeReduced(result, scratch, c + ConstantOffset.modulus64, scratch + 40)
    }

    // MARK: Kernels

    /// The ladder of `power`: base into 52-bit limbs and Montgomery form, the table base^0...15,
    /// then for each exponent nibble from the most significant four squarings (none before the
    /// first) and a multiplication by the entry picked with `selectEntry`; then out of
    /// Montgomery form and fully reduced. The operations depend only on `exponentCount`.
    @inline(never)
    static func exponentiate(
        _ result: UnsafeMutablePointer<UInt64>, _ base: UnsafePointer<UInt64>, _ exponent: UnsafePointer<UInt8>?,
        _ exponentCount: Int, _ scratch: UnsafeMutablePointer<UInt64>, _ c: UnsafePointer<UInt64>
    ) {
        let p = c + ConstantOffset.modulus
        let baseLimbs = scratch + PowerScratch.base
        let accumulator = scratch + PowerScratch.accumulator
        let selected = scratch + PowerScratch.selected
        let table = scratch + PowerScratch.table
        load52(baseLimbs, from: base)
        // table[0] = R' mod p (Montgomery 1) = R'²·1·R'⁻¹; table[1] = base·R'; then products.
        almostMontgomeryMultiply(table, c + ConstantOffset.rSquared, c + ConstantOffset.one, p)
        almostMontgomeryMultiply(table + 40, baseLimbs, c + ConstantOffset.rSquared, p)
        for entry in 2..<tableEntryCount {
            if entry % 2 == 0 {
                almostMontgomeryMultiply(table + entry * 40, table + (entry / 2) * 40, table + (entry / 2) * 40, p)
            } else {
                almostMontgomeryMultiply(table + entry * 40, table + (entry - 1) * 40, table + 40, p)
            }
        }
        accumulator.update(from: table, count: 40)
        if let exponent {
            for position in 0..<exponentCount {
                let byte = exponent[position]
                for half in 0..<2 {
                    // High nibble first (public positions, secret values).
                    let nibble = UInt64((byte &>> UInt8(4 &- 4 &* half)) & 0x0F)
                    if position != 0 || half != 0 {
                        for _ in 0..<4 {
                            almostMontgomeryMultiply(accumulator, accumulator, accumulator, p)
                        }
                        selectEntry(nibble, table, selected, scratch + PowerScratch.masks)
                        almostMontgomeryMultiply(accumulator, accumulator, selected, p)
                    } else {
                        selectEntry(nibble, table, accumulator, scratch + PowerScratch.masks)
                    }
                }
            }
        }
        // Out of Montgomery form: accumulator·1·R'⁻¹ < p + 1 (at most p; reduced anyway).
        almostMontgomeryMultiply(selected, accumulator, c + ConstantOffset.one, p)
        storeReduced(result, selected, c + ConstantOffset.modulus64, scratch + PowerScratch.output)
    }

    /// selected = table[index] (16 entries of 40 limbs), reading every entry and combining them
    /// with masks, so no address or branch depends on the secret index. The masks go through
    /// memory (`masks`, 16 words) and the optimisation barrier before use.
    @inline(never)
    static func selectEntry(
        _ index: UInt64, _ table: UnsafePointer<UInt64>, _ selected: UnsafeMutablePointer<UInt64>,
        _ masks: UnsafeMutablePointer<UInt64>
    ) {
        for entry in 0..<tableEntryCount {
            let difference = UInt64(entry) ^ index
            // (d | -d) has its top bit set exactly when d != 0.
            masks[entry] = ((difference | (0 &- difference)) &>> 63) &- 1
        }
        ConstantTime.hideFromOptimizer(masks)
        var s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0, s4 = s0
        for entry in 0..<tableEntryCount {
            let mask = _mm512_set1_epi64(Int64(bitPattern: masks[entry]))
            let row = table + entry * 40
            s0 = _mm512_or_si512(s0, _mm512_and_si512(load(row, 0), mask))
            s1 = _mm512_or_si512(s1, _mm512_and_si512(load(row, 1), mask))
            s2 = _mm512_or_si512(s2, _mm512_and_si512(load(row, 2), mask))
            s3 = _mm512_or_si512(s3, _mm512_and_si512(load(row, 3), mask))
            s4 = _mm512_or_si512(s4, _mm512_and_si512(load(row, 4), mask))
        }
        store(selected, 0, s0)
        store(selected, 1, s1)
        store(selected, 2, s2)
        store(selected, 3, s3)
        store(selected, 4, s4)
    }

    /// result = a·b·R'⁻¹ mod p (R' = 2^2080), some value below 2p, as 40 normalised 52-bit
    /// limbs, for a, b < 2p in normalised limbs. `result` may alias `a` or `b` (both are read
    /// into registers or consumed before it is written).
    ///
    /// Each lane sums at most four 52-bit halves per step over 40 steps (< 2^60), so the 64-bit
    /// lanes cannot overflow before the final normalisation.
    @inline(never)
    static func almostMontgomeryMultiply(
        _ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>,
        _ p: UnsafePointer<UInt64>
    ) {
        let a0 = load(a, 0), a1 = load(a, 1), a2 = load(a, 2), a3 = load(a, 3), a4 = load(a, 4)
        let p0 = load(p, 0), p1 = load(p, 1), p2 = load(p, 2), p3 = load(p, 3), p4 = load(p, 4)
        let zero = _mm512_setzero_si512()
        var t0 = zero, t1 = zero, t2 = zero, t3 = zero, t4 = zero
        let aLow = a[0], pSecond = p[1]
        // The exact value of lane 0 (the vector's lane 0 is not used).
        var lowest: UInt64 = 0
        for i in 0..<limbCount {
            let bi = b[i]
            let vb = _mm512_set1_epi64(Int64(bitPattern: bi))
            t0 = _mm512_madd52lo_epu64(t0, a0, vb)
            t1 = _mm512_madd52lo_epu64(t1, a1, vb)
            t2 = _mm512_madd52lo_epu64(t2, a2, vb)
            t3 = _mm512_madd52lo_epu64(t3, a3, vb)
            t4 = _mm512_madd52lo_epu64(t4, a4, vb)
            let (productHigh, productLow) = aLow.multipliedFullWidth(by: bi)
            let x = lowest &+ (productLow & limbMask)
            let m = x & limbMask
            let vm = _mm512_set1_epi64(Int64(bitPattern: m))
            // Limb 1 with everything but m's products: read before they are added.
            let second = lane1(t0)
            t0 = _mm512_madd52lo_epu64(t0, p0, vm)
            t1 = _mm512_madd52lo_epu64(t1, p1, vm)
            t2 = _mm512_madd52lo_epu64(t2, p2, vm)
            t3 = _mm512_madd52lo_epu64(t3, p3, vm)
            t4 = _mm512_madd52lo_epu64(t4, p4, vm)
            // Move down one limb (lane 0, now a multiple of 2^52, is dropped).
            t0 = shiftDown(t0, t1)
            t1 = shiftDown(t1, t2)
            t2 = shiftDown(t2, t3)
            t3 = shiftDown(t3, t4)
            t4 = shiftDown(t4, zero)
            t0 = _mm512_madd52hi_epu64(t0, a0, vb)
            t1 = _mm512_madd52hi_epu64(t1, a1, vb)
            t2 = _mm512_madd52hi_epu64(t2, a2, vb)
            t3 = _mm512_madd52hi_epu64(t3, a3, vb)
            t4 = _mm512_madd52hi_epu64(t4, a4, vb)
            t0 = _mm512_madd52hi_epu64(t0, p0, vm)
            t1 = _mm512_madd52hi_epu64(t1, p1, vm)
            t2 = _mm512_madd52hi_epu64(t2, p2, vm)
            t3 = _mm512_madd52hi_epu64(t3, p3, vm)
            t4 = _mm512_madd52hi_epu64(t4, p4, vm)
            // New lane 0 = old limb 1: its other terms, low52(m·p[1]), high52(a[0]·b[i]), and
            // what limb 0 passes up: carry + high52(m·p[0]) = (x >> 52) + m.
            let highA = (productHigh &<< 12) | (productLow &>> 52)
            lowest = second &+ ((m &* pSecond) & limbMask) &+ (x &>> 52) &+ m &+ highA
        }
        store(result, 0, t0)
        store(result, 1, t1)
        store(result, 2, t2)
        store(result, 3, t3)
        store(result, 4, t4)
        result[0] = lowest
        // Normalise: carries up through the 40 limbs (the value is below 2p < 2^2080, so
        // nothing leaves limb 39).
        var carry: UInt64 = 0
        for k in 0..<limbCount {
            let sum = result[k] &+ carry
            result[k] = sum & limbMask
            carry = sum &>> 52
        }
    }

    /// result = value mod p as 32 64-bit limbs, for `value` below 2p in 40 normalised 52-bit
    /// limbs: converts to 33 words (bit 2048 in word 32), always computes value - p, and picks
    /// it by a mask (no borrow) that goes through memory and the optimisation barrier. Scratch:
    /// 33 words of value, 32 of difference, 1 mask word (66 words).
    @inline(never)
    static func storeReduced(
        _ result: UnsafeMutablePointer<UInt64>, _ value: UnsafePointer<UInt64>, _ modulus: UnsafePointer<UInt64>,
        _ scratch: UnsafeMutablePointer<UInt64>
    ) {
        let words = scratch, difference = scratch + 33, maskWord = scratch + 65
        var window: UInt128 = 0
        var bits = 0, word = 0
        for k in 0..<limbCount {
            window |= UInt128(value[k]) &<< UInt128(bits)
            bits &+= 52
            if bits >= 64 {
                words[word] = UInt64(truncatingIfNeeded: window)
                window &>>= 64
                bits &-= 64
                word &+= 1
            }
        }
        words[32] = UInt64(truncatingIfNeeded: window)
        var borrow: UInt64 = 0
        for k in 0..<32 {
            let d = UInt128(words[k]) &- UInt128(modulus[k]) &- UInt128(borrow)
            difference[k] = UInt64(truncatingIfNeeded: d)
            borrow = UInt64(truncatingIfNeeded: d &>> 64) & 1
        }
        // value ≥ p exactly when bit 2048 is set (word 32 is 0 or 1) or the low words did not borrow.
        maskWord.pointee = 0 &- (words[32] | (borrow ^ 1))
        ConstantTime.hideFromOptimizer(maskWord)
        let useDifference = maskWord.pointee
        for k in 0..<32 {
            result[k] = (difference[k] & useDifference) | (words[k] & ~useDifference)
        }
    }

    // MARK: Helpers (always inlined into the kernels)

    /// 40 limbs of 52 bits from 32 limbs of 64 bits (bits 52k...52k+51 into limb k).
    @inline(__always)
    static func load52(_ limbs: UnsafeMutablePointer<UInt64>, from x: UnsafePointer<UInt64>) {
        for k in 0..<(limbCount - 1) {
            let bit = 52 &* k, word = bit &>> 6, shift = bit & 63
            let pair = UInt128(x[word &+ 1]) &<< 64 | UInt128(x[word])
            limbs[k] = UInt64(truncatingIfNeeded: pair &>> UInt128(shift)) & limbMask
        }
        // Limb 39: bits 2028...2047, the top 20 bits of word 31.
        limbs[limbCount - 1] = x[31] &>> 44
    }

    /// Vector `index` (8 limbs) of the 40 at `limbs`.
    @inline(__always)
    static func load(_ limbs: UnsafePointer<UInt64>, _ index: Int) -> __m512i {
        _mm512_loadu_si512(limbs + 8 &* index)
    }

    /// Stores vector `index` of the 40 limbs at `limbs`.
    @inline(__always)
    static func store(_ limbs: UnsafeMutablePointer<UInt64>, _ index: Int, _ vector: __m512i) {
        _mm512_storeu_si512(limbs + 8 &* index, vector)
    }

    /// Lanes 1...7 of `low` then lane 0 of `high` (`valignq $1`).
    @inline(__always)
    static func shiftDown(_ low: __m512i, _ high: __m512i) -> __m512i {
        _mm512_permutex2var_epi64(low, _mm512_set_epi64(8, 7, 6, 5, 4, 3, 2, 1), high)
    }

    /// Lane 1 of a vector.
    @inline(__always)
    static func lane1(_ vector: __m512i) -> UInt64 {
        let low = _mm512_castsi512_si128(vector)
        return UInt64(bitPattern: _mm_cvtsi128_si64(_mm_unpackhi_epi64(low, low)))
    }
}
