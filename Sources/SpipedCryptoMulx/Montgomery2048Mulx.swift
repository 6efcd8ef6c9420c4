import SpipedCrypto

/// Montgomery multiplication and squaring modulo the group-14 prime for CPUs with BMI2.
///
/// This target is compiled with `-mbmi2`, so 64×64→128-bit products become `mulx`, which
/// leaves the flags alone: a row of products and its carry chain then compile to one
/// straight `mulx`/`adc` sequence with the carry kept in CF (the portable code must
/// materialise carries because `mul` clobbers the flags). Nothing here checks the CPU: call it
/// only after `Montgomery2048Hardware.isSupported` (target SpipedCryptoAccelerated), which
/// reads CPUID and runs a known-answer test. Only this file is built with `-mbmi2`, so the
/// rest of the library still runs on CPUs without BMI2.
///
/// Multiplication is operand scanning (CIOS): for each limb b[i], t += a·b[i] and then
/// t += m·p with m = t[0] (-p⁻¹ ≡ 1 mod 2^64 as p ≡ -1), after which t[0] is zero and the
/// window over t slides up one limb instead of shifting. Each row is computed in two passes:
/// `mulRow` forms x·y as 33 limbs (low product words plus the previous high word, one carry
/// chain), `addRow` adds those into t (a second chain). Chains run over fixed 8-limb groups
/// unrolled by the compiler; the carries are `Bool`s combined so LLVM keeps them in CF
/// (`o1 != o2` of the two overflows: at most one can be set). Squaring computes the cross
/// products by product scanning (each once), doubles them, adds the squares, and reduces the
/// 64-limb result with the same rows of m·p.
///
/// Constant time: fixed trip counts, fixed addresses, carries as data, the final subtraction
/// selected with a mask that passes through `ConstantTime.hideFromOptimizer`. `multiply` and
/// `square` are `@inline(never)`, so they keep their symbols and `scripts/check-constant-time`
/// checks their machine code.
public enum Montgomery2048Mulx {
    /// Scratch limbs used (must not exceed `Montgomery2048Engine.scratchLimbCount`).
    public static let scratchLimbCount = 160

    /// result = a · b · R⁻¹ mod p (R = 2^2048), for a < R, b < p; see `Montgomery2048Engine`.
    /// Scratch: the 66-limb sliding window t at 0, the 33-limb row u at 72, the difference and
    /// its mask word at 112...144. (`square`: t at 0, u at 72, difference and mask at 120...152.)
    @inline(never)
    public static func multiply(
        _ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>,
        _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>
    ) {
        let u = scratch + 72
        var t = scratch
        for j in 0..<66 { t[j] = 0 }
        for i in 0..<32 {
            // t stays below 2(R + p) < 2^2050, so 33 limbs of the window hold it (limb 33 is
            // zero and only catches addRow's final carry, which is zero).
            mulRow(u, a, b[i])
            addRow(t, u)
            // m = t[0]·(-p⁻¹ mod 2^64) = t[0]: adding m·p clears limb 0.
            mulRowModulus(u, modulus, t[0])
            addRow(t, u)
            t += 1
        }
        subtractModulusIfNeeded(from: t, topBit: t[32], into: result, modulus: modulus, difference: scratch + 112)
    }

    /// result = a² · R⁻¹ mod p, for a < p; see `Montgomery2048Engine`.
    @inline(never)
    public static func square(
        _ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>,
        _ modulus: UnsafePointer<UInt64>, _ scratch: UnsafeMutablePointer<UInt64>
    ) {
        let t = scratch, u = scratch + 72
        // Cross products Σ_{i<j} a[i]·a[j]·2^(64(i+j)) into t[0..<64] by product scanning:
        // column k sums the pairs (j, k-j) with j < k-j in a three-word accumulator (496
        // products). Measured faster here than rows, whose lengths would vary.
        var column = ColumnSum()
        t[0] = 0
        for k in 1..<32 {
            column.addProducts(a, column: k, indices: 0..<((k &+ 1) &>> 1))
            t[k] = column.retire()
        }
        for k in 32..<62 {
            column.addProducts(a, column: k, indices: (k &- 31)..<((k &+ 1) &>> 1))
            t[k] = column.retire()
        }
        t[62] = column.retire()
        t[63] = 0
        // t = 2t + Σ a[i]²·2^(128i); 2t < 2^4096 and so is the sum (it is a² < p²).
        var shiftedOut: UInt64 = 0, carry = false
        for i in 0..<32 {
            let (squareHigh, squareLow) = a[i].multipliedFullWidth(by: a[i])
            let low = t[2 &* i], high = t[2 &* i &+ 1]
            let doubledLow = (low &<< 1) | shiftedOut
            let doubledHigh = (high &<< 1) | (low &>> 63)
            shiftedOut = high &>> 63
            (t[2 &* i], carry) = addWithCarry(doubledLow, squareLow, carry)
            (t[2 &* i &+ 1], carry) = addWithCarry(doubledHigh, squareHigh, carry)
        }
        // Montgomery reduction of the 64-limb t: for each i, m = t[i] and t += m·p·2^(64i)
        // clears limb i. The carry out of each row's top limb is kept in `pending` and added at
        // the next row's top limb (which holds data of t's upper half).
        var pending = false
        for i in 0..<32 {
            mulRowModulus(u, modulus, t[i])
            addRowPending(t + i, u, &pending)
        }
        subtractModulusIfNeeded(from: t + 32, topBit: UInt64(unsafeBitCast(pending, to: UInt8.self)), into: result,
                                modulus: modulus, difference: scratch + 120)
    }

    /// A column sum of 128-bit products as three words (least significant first).
    struct ColumnSum {
        var word0: UInt64 = 0, word1: UInt64 = 0, word2: UInt64 = 0

        /// Adds x·y.
        @inline(__always)
        mutating func add(_ x: UInt64, _ y: UInt64) {
            let (high, low) = x.multipliedFullWidth(by: y)
            var carry: Bool
            (word0, carry) = addWithCarry(word0, low, false)
            (word1, carry) = addWithCarry(word1, high, carry)
            word2 &+= UInt64(unsafeBitCast(carry, to: UInt8.self))
        }

        /// Adds Σ a[j]·a[k-j] for j in `indices`.
        @inline(__always)
        mutating func addProducts(_ a: UnsafePointer<UInt64>, column k: Int, indices: Range<Int>) {
            var j = indices.lowerBound
            while j < indices.upperBound {
                add(a[j], a[k &- j])
                j &+= 1
            }
        }

        /// Returns the lowest word and shifts the sum down by 64 bits.
        @inline(__always)
        mutating func retire() -> UInt64 {
            let word = word0
            word0 = word1
            word1 = word2
            word2 = 0
            return word
        }
    }

    /// t[0..<33] += u[0..<33] + pending·2^(64·32); `pending` becomes the carry out of limb 32.
    @inline(__always)
    static func addRowPending(_ t: UnsafeMutablePointer<UInt64>, _ u: UnsafePointer<UInt64>, _ pending: inout Bool) {
        var carry = false
        addRow8(t, u, &carry)
        addRow8(t + 8, u + 8, &carry)
        addRow8(t + 16, u + 16, &carry)
        addRow8(t + 24, u + 24, &carry)
        let (top, carry1) = addWithCarry(t[32], u[32], carry)
        let (sum, carry2) = addWithCarry(top, 0, pending)
        t[32] = sum
        // At most one of the two carries is set: u[32] ≤ 2^64 - 2 (m·p < 2^2112 - 2^2048), so
        // when carry1 is set top ≤ 2^64 - 2 and adding `pending` cannot overflow again.
        pending = carry1 != carry2
    }

    // MARK: Rows

    /// (x + y + carry, carry out) with the carry as a Bool; written so LLVM emits one `adc`.
    @inline(__always)
    static func addWithCarry(_ x: UInt64, _ y: UInt64, _ carry: Bool) -> (UInt64, Bool) {
        let (partial, overflow1) = x.addingReportingOverflow(y)
        let (sum, overflow2) = partial.addingReportingOverflow(UInt64(unsafeBitCast(carry, to: UInt8.self)))
        // Both overflows cannot happen together (x + y ≤ 2^65 - 2), so `!=` is their sum.
        return (sum, overflow1 != overflow2)
    }

    /// u[0..<8] = low(x[j]·y) + high(x[j-1]·y) + carry for j in 0..<8, where `high` holds the
    /// high word of the product before this group and is left holding the last one.
    @inline(__always)
    static func mulRow8(_ u: UnsafeMutablePointer<UInt64>, _ x: UnsafePointer<UInt64>, _ y: UInt64,
                        _ high: inout UInt64, _ carry: inout Bool) {
        for j in 0..<8 {
            let (productHigh, productLow) = x[j].multipliedFullWidth(by: y)
            (u[j], carry) = addWithCarry(productLow, high, carry)
            high = productHigh
        }
    }

    /// u[0..<33] = x · y for 32-limb x.
    @inline(__always)
    static func mulRow(_ u: UnsafeMutablePointer<UInt64>, _ x: UnsafePointer<UInt64>, _ y: UInt64) {
        var high: UInt64 = 0, carry = false
        mulRow8(u, x, y, &high, &carry)
        mulRow8(u + 8, x + 8, y, &high, &carry)
        mulRow8(u + 16, x + 16, y, &high, &carry)
        mulRow8(u + 24, x + 24, y, &high, &carry)
        // x·y < 2^2112: the top word plus the carry cannot overflow.
        u[32] = high &+ UInt64(unsafeBitCast(carry, to: UInt8.self))
    }

    /// u[0..<33] = m · p for the reduction multiplier m = t[0] of the limb being cleared, except
    /// that the limb-0 product is folded: p[0] = 2^64 - 1, so t[0] + m·p[0] = m + m·2^64 - m =
    /// m·2^64, i.e. limb 0 becomes zero and m carries into limb 1. Here u[0] = 0 and m enters
    /// limb 1 as the "previous high word"; the caller's limb 0 is then left holding m instead of
    /// zero, which is harmless because that limb is dropped (the window slides past it).
    /// Saves one `mulx` per row.
    @inline(__always)
    static func mulRowModulus(_ u: UnsafeMutablePointer<UInt64>, _ p: UnsafePointer<UInt64>, _ m: UInt64) {
        var high = m, carry = false
        u[0] = 0
        for j in 1..<8 {
            let (productHigh, productLow) = p[j].multipliedFullWidth(by: m)
            (u[j], carry) = addWithCarry(productLow, high, carry)
            high = productHigh
        }
        mulRow8(u + 8, p + 8, m, &high, &carry)
        mulRow8(u + 16, p + 16, m, &high, &carry)
        mulRow8(u + 24, p + 24, m, &high, &carry)
        u[32] = high &+ UInt64(unsafeBitCast(carry, to: UInt8.self))
    }

    /// t[0..<8] += u[0..<8] + carry.
    @inline(__always)
    static func addRow8(_ t: UnsafeMutablePointer<UInt64>, _ u: UnsafePointer<UInt64>, _ carry: inout Bool) {
        for j in 0..<8 {
            (t[j], carry) = addWithCarry(t[j], u[j], carry)
        }
    }

    /// t[0..<34] += u[0..<33] (the caller's bounds keep the sum below 2^2176).
    @inline(__always)
    static func addRow(_ t: UnsafeMutablePointer<UInt64>, _ u: UnsafePointer<UInt64>) {
        var carry = false
        addRow8(t, u, &carry)
        addRow8(t + 8, u + 8, &carry)
        addRow8(t + 16, u + 16, &carry)
        addRow8(t + 24, u + 24, &carry)
        (t[32], carry) = addWithCarry(t[32], u[32], carry)
        t[33] &+= UInt64(unsafeBitCast(carry, to: UInt8.self))
    }

    /// result = (topBit·2^2048 + value) mod p for a value below 2p: value - p is always
    /// computed (into `difference`, 32 limbs, followed by one word for the mask) and a mask
    /// picks it when there was no borrow or `topBit` is set. `result` may equal `value`.
    ///
    /// The mask goes through memory and `ConstantTime.hideFromOptimizer` first: without that
    /// LLVM turned the masked select into a `cmov` between the two source addresses followed by
    /// one load, a memory access whose address depends on the secret-dependent "subtract or not".
    @inline(__always)
    static func subtractModulusIfNeeded(
        from value: UnsafePointer<UInt64>, topBit: UInt64, into result: UnsafeMutablePointer<UInt64>,
        modulus p: UnsafePointer<UInt64>, difference: UnsafeMutablePointer<UInt64>
    ) {
        var borrow = false
        for k in 0..<32 {
            let (partial, borrow1) = value[k].subtractingReportingOverflow(p[k])
            let (limb, borrow2) = partial.subtractingReportingOverflow(UInt64(unsafeBitCast(borrow, to: UInt8.self)))
            difference[k] = limb
            borrow = borrow1 != borrow2
        }
        let noBorrow = UInt64(unsafeBitCast(!borrow, to: UInt8.self))
        let maskWord = difference + 32
        maskWord.pointee = 0 &- (topBit | noBorrow)
        ConstantTime.hideFromOptimizer(maskWord)
        let useDifference = maskWord.pointee
        for k in 0..<32 {
            result[k] = (difference[k] & useDifference) | (value[k] & ~useDifference)
        }
    }
}
