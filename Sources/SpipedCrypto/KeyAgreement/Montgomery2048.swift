/// Arithmetic modulo the RFC 3526 group-14 prime p, in Montgomery form with R = 2^2048.
///
/// Numbers are 32 little-endian 64-bit limbs (limb 0 is least significant) in memory owned by
/// the caller: every operation works through one `Montgomery2048.Workspace`, allocated once per
/// exponentiation and wiped before it is freed, so the inner loops never allocate.
///
/// Constant time: every function here runs the same instructions, and touches the same
/// addresses, for all values of the same public sizes. Loop bounds depend only on limb counts;
/// carries are propagated arithmetically; the data-dependent decisions (the final subtraction
/// of p, the doubling by an exponent bit, the table entry for an exponent window) are mask
/// selects whose masks pass through `ConstantTime.hideFromOptimizer`. Nothing here branches on
/// a limb's value. The kernels that handle secrets are `@inline(never)`, so they keep their
/// own symbols and `scripts/check-constant-time` can check their machine code (CI does).
///
/// Two properties of p are used:
/// - p ≡ -1 (mod 2^64) (its low limb is all ones), so the Montgomery constant
///   -p⁻¹ mod 2^64 is 1 and each reduction multiplier m[k] is simply the low word of column
///   k; and adding m[k]·p[0] = m[k]·2^64 - m[k] to a low word equal to m[k] leaves 0 and
///   carries m[k], so that product needs no multiplication.
/// - 2^2047 < p < 2^2048, so R mod p = 2^2048 - p, and any value below 2p needs at most one
///   subtraction of p.
enum Montgomery2048 {
    /// Limbs in one residue.
    static let limbCount = 32

    /// p as little-endian limbs (the hex of RFC 3526 section 3, read from the right).
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

    /// R² mod p, the factor that brings a plain number into Montgomery form.
    ///
    /// Derived from p at first use rather than typed in: start from 2R mod p (R mod p doubled),
    /// then 11 Montgomery squarings map 2^k·R to 2^(2k)·R, reaching 2^2048·R = R² mod p.
    static let rSquaredLimbs: [UInt64] = {
        let workspace = Workspace()
        defer { workspace.release() }
        let value = workspace.accumulator
        workspace.setMontgomeryOne(value)
        workspace.conditionalDouble(value, bit: 1)
        for _ in 0..<11 {
            workspace.square(value, value)
        }
        return Array(UnsafeBufferPointer(start: value, count: limbCount))
    }()

    /// A 192-bit column sum for product scanning, as three words (least significant first).
    /// A column of 2048-bit products sums at most 64 products of 128 bits plus a carry, far
    /// below 2^192. Carries are moved arithmetically (128-bit additions, and an overflow flag
    /// widened by a bit cast, i.e. zero-extension, which compiles to adc), never with a
    /// conditional: `overflow ? 1 : 0` was compiled to a data-dependent branch here.
    struct ColumnAccumulator {
        /// Bits 0..<64.
        var word0: UInt64 = 0
        /// Bits 64..<128.
        var word1: UInt64 = 0
        /// Bits 128..<192.
        var word2: UInt64 = 0

        /// Adds x · y.
        @inline(__always)
        mutating func add(_ x: UInt64, _ y: UInt64) {
            let low = UInt128(word1) &<< 64 | UInt128(word0)
            // x·y < 2^128 fits; the carry out of the 128-bit sum belongs in word2.
            let (sum, overflow) = low.addingReportingOverflow(UInt128(x) &* UInt128(y))
            word0 = UInt64(truncatingIfNeeded: sum)
            word1 = UInt64(truncatingIfNeeded: sum &>> 64)
            // A Bool is one byte holding 0 or 1: the bit cast is a plain zero-extension.
            word2 &+= UInt64(unsafeBitCast(overflow, to: UInt8.self))
        }

        /// Adds a single word.
        @inline(__always)
        mutating func add(_ x: UInt64) {
            let sum0 = UInt128(word0) &+ UInt128(x)
            let sum1 = UInt128(word1) &+ (sum0 &>> 64)
            word0 = UInt64(truncatingIfNeeded: sum0)
            word1 = UInt64(truncatingIfNeeded: sum1)
            word2 &+= UInt64(truncatingIfNeeded: sum1 &>> 64)
        }

        /// Adds another column sum.
        @inline(__always)
        mutating func add(_ other: ColumnAccumulator) {
            let sum0 = UInt128(word0) &+ UInt128(other.word0)
            let sum1 = UInt128(word1) &+ UInt128(other.word1) &+ (sum0 &>> 64)
            word0 = UInt64(truncatingIfNeeded: sum0)
            word1 = UInt64(truncatingIfNeeded: sum1)
            word2 &+= other.word2 &+ UInt64(truncatingIfNeeded: sum1 &>> 64)
        }

        /// Returns the lowest word and shifts the sum right by 64 bits (moves to the next column).
        @inline(__always)
        mutating func retireWord() -> UInt64 {
            let word = word0
            word0 = word1
            word1 = word2
            word2 = 0
            return word
        }

        /// For a reduction column: returns m = the lowest word, then adds m·p[0] and moves to
        /// the next column. Since p[0] = 2^64 - 1, adding m·p[0] = m·2^64 - m turns the low
        /// word (= m) into 0 and adds m to the word above it: no multiplication needed.
        @inline(__always)
        mutating func retireWordCancelledByModulus() -> UInt64 {
            let m = retireWord()
            let sum0 = UInt128(word0) &+ UInt128(m)
            let sum1 = UInt128(word1) &+ (sum0 &>> 64)
            word0 = UInt64(truncatingIfNeeded: sum0)
            word1 = UInt64(truncatingIfNeeded: sum1)
            word2 &+= UInt64(truncatingIfNeeded: sum1 &>> 64)
            return m
        }
    }

    /// Scratch memory for one exponentiation: a copy of p, the multiplication scratch, the
    /// window table and the working residues. Holds secret-derived values: `release()` wipes it.
    ///
    /// `multiply` and `square` run the workspace's engine when it has one (a faster
    /// implementation from the backend), else the portable code below.
    struct Workspace {
        /// Entries in the table: the fixed-window powers (window of 4 bits) or the comb.
        static let tableEntryCount = 16
        /// Width of the exponent windows in bits.
        static let windowBitCount = 4

        /// The single allocation everything below points into.
        private let storage: UnsafeMutablePointer<UInt64>
        /// Limbs of multiplication scratch: the portable code's 97, or what an engine needs.
        static let productLimbCount = max(97, Montgomery2048Engine.scratchLimbCount)
        /// Words for the per-entry selection masks of `selectEntry` (up to the comb's 64 entries).
        static let selectionMaskCount = 64
        private static let totalLimbCount = 32 + productLimbCount + tableEntryCount * 32 + 32 + 32 + selectionMaskCount
        /// p (32 limbs).
        let modulus: UnsafeMutablePointer<UInt64>
        /// Multiplication scratch (`productLimbCount` limbs). Portable `multiply`: the reduction
        /// multipliers m[0..<32] in limbs 0..<32, the unreduced result in 32..<64. Portable
        /// `square`: the 64-limb square, reduced in place. Limbs 64..<97: the difference and the
        /// mask word of `subtractModulusIfNeeded` (limb 96 is also `conditionalDouble`'s mask
        /// word). An engine uses all of it as it likes.
        let product: UnsafeMutablePointer<UInt64>
        /// `tableEntryCount` residues of 32 limbs each, in Montgomery form: base^0 ... base^15
        /// for `power`, or the comb entries for `powerOfTwoComb`.
        let table: UnsafeMutablePointer<UInt64>
        /// The running result (32 limbs).
        let accumulator: UnsafeMutablePointer<UInt64>
        /// The table entry selected for the current window (32 limbs).
        let selected: UnsafeMutablePointer<UInt64>
        /// One mask word per table entry for `selectEntry` (`selectionMaskCount` words).
        let selectionMasks: UnsafeMutablePointer<UInt64>
        /// The faster multiply/square pair in use, or nil for the portable code.
        let engine: Montgomery2048Engine?

        /// Allocates the scratch space and copies p into it; `engine` nil means portable.
        init(engine: Montgomery2048Engine? = nil) {
            self.engine = engine
            storage = UnsafeMutablePointer<UInt64>.allocate(capacity: Workspace.totalLimbCount)
            storage.initialize(repeating: 0, count: Workspace.totalLimbCount)
            modulus = storage
            product = modulus + 32
            table = product + Workspace.productLimbCount
            accumulator = table + Workspace.tableEntryCount * 32
            selected = accumulator + 32
            selectionMasks = selected + 32
            Montgomery2048.modulusLimbs.withUnsafeBufferPointer { limbs in
                modulus.update(from: limbs.baseAddress!, count: 32)
            }
        }

        /// Wipes and frees the scratch space; the workspace must not be used afterwards.
        func release() {
            SecureWipe.wipe(storage, count: Workspace.totalLimbCount)
            storage.deallocate()
        }

        // MARK: Montgomery multiplication and squaring
        //
        // Both use product scanning: column k of a·b + M·p is summed in a 192-bit accumulator,
        // where M = Σ m[j]·2^(64j) is chosen a limb at a time so the low half of a·b + M·p
        // vanishes: m[k] = (column k's low word)·(-p⁻¹ mod 2^64) = that low word itself. The
        // result is (a·b + M·p)/R < 2p, then one masked subtraction of p. `multiply`
        // interleaves the reduction with the product (Koç's "finely integrated product
        // scanning"); `square` computes the whole square first and reduces it afterwards
        // (`reduce`), which lets each cross product be computed once. Intermediate values live
        // in `product`, so the output may alias the inputs.
        //
        // Constant time: loop bounds depend only on the column index; carries are arithmetic.

        /// result = a · b · R⁻¹ mod p, for a < R and b < p. `result` may alias `a` or `b`. Runs
        /// the engine's multiply, or the portable one. Uses `product`.
        @inline(__always)
        func multiply(_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>) {
            if let engine {
                engine.multiply(result, a, b, modulus, product)
            } else {
                Workspace.multiply(result, a, b, modulus: modulus, product: product)
            }
        }

        /// result = a² · R⁻¹ mod p, for a < p. `result` may alias `a`. Runs the engine's square,
        /// or the portable one. Uses `product`.
        @inline(__always)
        func square(_ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>) {
            if let engine {
                engine.square(result, a, modulus, product)
            } else {
                Workspace.square(result, a, modulus: modulus, product: product)
            }
        }

        /// Portable multiplication: result = a · b · R⁻¹ mod p, for a < R and b < p (then
        /// a·b < R·p and the reduced value is below 2p). `result` may alias `a` or `b`.
        /// `modulus` is p; `product` is 97 limbs of scratch. Never inlined: a kernel with its own
        /// symbol for `scripts/check-constant-time`.
        @inline(never)
        static func multiply(
            _ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>,
            modulus p: UnsafePointer<UInt64>, product: UnsafeMutablePointer<UInt64>
        ) {
            let m = product, sum = product + 32
            // Two accumulators, one per product stream, so the two carry chains run in
            // parallel; the a·b column is folded into the other at the end of each column.
            var column = ColumnAccumulator()
            for k in 0..<32 {
                var products = ColumnAccumulator()
                for j in 0..<k {
                    products.add(a[j], b[k &- j])
                    column.add(m[j], p[k &- j])
                }
                products.add(a[k], b[0])
                column.add(products)
                m[k] = column.retireWordCancelledByModulus()
            }
            for k in 32..<63 {
                var products = ColumnAccumulator()
                for j in (k - 31)..<32 {
                    products.add(a[j], b[k &- j])
                    column.add(m[j], p[k &- j])
                }
                column.add(products)
                sum[k - 32] = column.retireWord()
            }
            sum[31] = column.retireWord()
            subtractModulusIfNeeded(from: sum, topBit: column.retireWord(), into: result, modulus: p, product: product)
        }

        /// Portable squaring: result = a² · R⁻¹ mod p, for a < p. `result` may alias `a`.
        /// `modulus` is p; `product` is 97 limbs of scratch.
        ///
        /// Three passes over a 64-limb t in `product`: the cross products a[i]·a[j] (i < j)
        /// once each, by product scanning (496 limb products); t = 2t + Σ a[i]²·2^(128i)
        /// (32 more); then Montgomery reduction of t (`reduce`). Never inlined (checked kernel).
        @inline(never)
        static func square(
            _ result: UnsafeMutablePointer<UInt64>, _ a: UnsafePointer<UInt64>,
            modulus: UnsafePointer<UInt64>, product: UnsafeMutablePointer<UInt64>
        ) {
            let t = product
            var column = ColumnAccumulator()
            t[0] = 0
            for k in 1..<32 {
                // Column k: pairs (i, k-i) with i < k-i.
                Workspace.addProducts(a, a, column: k, indices: 0..<((k &+ 1) &>> 1), into: &column)
                t[k] = column.retireWord()
            }
            for k in 32..<62 {
                Workspace.addProducts(a, a, column: k, indices: (k &- 31)..<((k &+ 1) &>> 1), into: &column)
                t[k] = column.retireWord()
            }
            // Column 62 has no pair i < j (j would exceed 31).
            t[62] = column.retireWord()
            t[63] = 0
            // t = 2t + the squares a[i]² (on limbs 2i, 2i+1). 2t < 2^4096 and so is the sum.
            var shiftedOut: UInt64 = 0, carry: UInt64 = 0
            for i in 0..<32 {
                let square = UInt128(a[i]) &* UInt128(a[i])
                let low = t[2 &* i], high = t[2 &* i &+ 1]
                let doubledLow = (low &<< 1) | shiftedOut
                let doubledHigh = (high &<< 1) | (low &>> 63)
                shiftedOut = high &>> 63
                let sum0 = UInt128(doubledLow) &+ (square & UInt128(UInt64.max)) &+ UInt128(carry)
                let sum1 = UInt128(doubledHigh) &+ (square &>> 64) &+ (sum0 &>> 64)
                t[2 &* i] = UInt64(truncatingIfNeeded: sum0)
                t[2 &* i &+ 1] = UInt64(truncatingIfNeeded: sum1)
                carry = UInt64(truncatingIfNeeded: sum1 &>> 64)
            }
            reduce(result, modulus: modulus, product: product)
        }

        /// result = t · R⁻¹ mod p for the 64-limb t in `product`, t < R·p, fully reduced.
        ///
        /// Montgomery reduction by product scanning, in place: column k of t + M·p, with
        /// m[k] = column k's low word (as -p⁻¹ mod 2^64 = 1) stored over t[k] once t[k] is
        /// consumed, and result limb k - 32 over t[k - 32], which is no longer needed by then
        /// (column k ≥ 32 reads only m[k-31...31]).
        @inline(__always)
        static func reduce(_ result: UnsafeMutablePointer<UInt64>, modulus p: UnsafePointer<UInt64>, product: UnsafeMutablePointer<UInt64>) {
            let t = product
            var column = ColumnAccumulator()
            for k in 0..<32 {
                column.add(t[k])
                Workspace.addProducts(t, p, column: k, indices: 0..<k, into: &column)
                t[k] = column.retireWordCancelledByModulus()
            }
            for k in 32..<63 {
                column.add(t[k])
                Workspace.addProducts(t, p, column: k, indices: (k &- 31)..<32, into: &column)
                t[k &- 32] = column.retireWord()
            }
            column.add(t[63])
            t[31] = column.retireWord()
            subtractModulusIfNeeded(from: t, topBit: column.retireWord(), into: result, modulus: p, product: product)
        }

        /// accumulator += Σ x[j]·y[column-j] for j in `indices`, two products per step into two
        /// accumulators (two independent carry chains), merged at the end. Public bounds only.
        /// Index arithmetic uses wrapping operators: the bounds are in 0...62, and checked
        /// arithmetic would put overflow branches in the innermost loop.
        @inline(__always)
        static func addProducts(
            _ x: UnsafePointer<UInt64>, _ y: UnsafePointer<UInt64>, column k: Int, indices: Range<Int>,
            into accumulator: inout ColumnAccumulator
        ) {
            var second = ColumnAccumulator()
            var j = indices.lowerBound
            while j &+ 1 < indices.upperBound {
                accumulator.add(x[j], y[k &- j])
                second.add(x[j &+ 1], y[k &- j &- 1])
                j &+= 2
            }
            if j < indices.upperBound {
                accumulator.add(x[j], y[k &- j])
            }
            accumulator.add(second)
        }

        /// result = (topBit·2^2048 + value) mod p, for a value below 2p, in constant time:
        /// value - p is always computed (into limbs 64..<96 of `product`; the mask goes in limb
        /// 96) and a mask picks it when there was no borrow or when `topBit` is set. `result` may
        /// equal `value`.
        @inline(__always)
        static func subtractModulusIfNeeded(
            from value: UnsafePointer<UInt64>, topBit: UInt64, into result: UnsafeMutablePointer<UInt64>,
            modulus p: UnsafePointer<UInt64>, product: UnsafeMutablePointer<UInt64>
        ) {
            let difference = product + 64
            var borrow: UInt64 = 0
            for k in 0..<32 {
                // value - p - borrow wraps modulo 2^128; bit 64 and up are all ones on borrow.
                let d = UInt128(value[k]) &- UInt128(p[k]) &- UInt128(borrow)
                difference[k] = UInt64(truncatingIfNeeded: d)
                borrow = UInt64(truncatingIfNeeded: d &>> 64) & 1
            }
            // Use the difference when value ≥ p: no borrow, or a set bit 2048 absorbed it. The
            // mask passes through memory and the optimisation barrier, so the compiler cannot
            // turn the masked select below into a branch or an address select on it.
            let maskWord = difference + 32
            maskWord.pointee = ConstantTime.mask(fromBit: topBit | (borrow ^ 1))
            ConstantTime.hideFromOptimizer(maskWord)
            let useDifference = maskWord.pointee
            for k in 0..<32 {
                result[k] = ConstantTime.select(useDifference, difference[k], value[k])
            }
        }

        /// value = (bit == 1 ? 2·value : value) mod p, for value < p and bit 0 or 1 (a secret
        /// exponent bit). Adds `value & mask` to itself (no branch, no secret-dependent shift),
        /// then one constant-time subtraction of p. Uses limbs 64..<97 of `product`.
        ///
        /// The mask is written to limb 96 of `product` and passed through the optimisation
        /// barrier before use, like the masks of `selectEntry` and `subtractModulusIfNeeded`:
        /// otherwise the compiler sees that it is 0 or all ones and may compile `value & mask`
        /// as "add only when the bit is set", a branch on the exponent. Never inlined (checked
        /// kernel).
        @inline(never)
        func conditionalDouble(_ value: UnsafeMutablePointer<UInt64>, bit: UInt64) {
            let maskWord = product + 96
            maskWord.pointee = ConstantTime.mask(fromBit: bit)
            ConstantTime.hideFromOptimizer(maskWord)
            let addend = maskWord.pointee
            var carry: UInt64 = 0
            for k in 0..<32 {
                let s = UInt128(value[k]) &+ UInt128(value[k] & addend) &+ UInt128(carry)
                value[k] = UInt64(truncatingIfNeeded: s)
                carry = UInt64(truncatingIfNeeded: s &>> 64)
            }
            Workspace.subtractModulusIfNeeded(from: value, topBit: carry, into: value, modulus: modulus, product: product)
        }

        /// value = R mod p (the Montgomery form of 1) = 2^2048 - p, the two's complement of p.
        func setMontgomeryOne(_ value: UnsafeMutablePointer<UInt64>) {
            var carry: UInt64 = 1
            for k in 0..<32 {
                let s = UInt128(~modulus[k]) &+ UInt128(carry)
                value[k] = UInt64(truncatingIfNeeded: s)
                carry = UInt64(truncatingIfNeeded: s &>> 64)
            }
        }

        /// result = value · R⁻¹ mod p: leaves Montgomery form by a Montgomery multiplication
        /// with the plain number 1; the result is fully reduced (< p). Uses `product`, `selected`.
        func leaveMontgomeryForm(_ result: UnsafeMutablePointer<UInt64>, _ value: UnsafePointer<UInt64>) {
            selected.update(repeating: 0, count: 32)
            selected[0] = 1
            multiply(result, value, selected)
        }

        /// selected = table[index] of the workspace's 16-entry table (see `selectEntry`).
        func selectTableEntry(_ index: UInt64) {
            selectEntry(index, from: table, entryCount: Workspace.tableEntryCount)
        }

        /// selected = entry `index` of `entryCount` (at most `selectionMaskCount`) consecutive
        /// 32-limb entries at `entries`, reading every entry and combining them with masks, so
        /// neither the addresses read nor the branches taken depend on the secret index.
        ///
        /// The masks are written to memory and passed through `hideFromOptimizer` before use.
        /// Without that barrier LLVM recognised `row[k] & equalMask(entry, index)` as "load only
        /// when entry == index" and compiled the scan into a compare and a conditional jump
        /// around each load: a branch and memory accesses that depend on the secret index.
        /// Never inlined (checked kernel; without the barrier LLVM also inlined the scan into
        /// `power` and `powerOfTwoComb`).
        @inline(never)
        func selectEntry(_ index: UInt64, from entries: UnsafePointer<UInt64>, entryCount: Int) {
            precondition(entryCount <= Workspace.selectionMaskCount, "too many table entries")
            for entry in 0..<entryCount {
                selectionMasks[entry] = ConstantTime.equalMask(UInt64(entry), index)
            }
            ConstantTime.hideFromOptimizer(selectionMasks)
            for k in 0..<32 { selected[k] = 0 }
            for entry in 0..<entryCount {
                let mask = selectionMasks[entry]
                let row = entries + entry * 32
                for k in 0..<32 {
                    selected[k] |= row[k] & mask
                }
            }
        }
    }

    // MARK: Exponentiation

    /// result = base^exponent mod p, as plain (non-Montgomery) limbs, fully reduced.
    ///
    /// `base` is 32 plain limbs, any value below 2^2048 (it is reduced mod p on entry).
    /// `exponent` is big-endian bytes of any length (empty means 0, giving 1).
    ///
    /// Fixed 4-bit windows from the most significant nibble: the table holds base^0 ... base^15;
    /// each window is four squarings and one multiplication by the masked-selected entry (also
    /// for a zero nibble, which multiplies by 1). The sequence of operations depends only on the
    /// exponent's byte length, never on its bits or on the base. `engine` nil: portable code.
    static func power(
        _ result: UnsafeMutablePointer<UInt64>, base: UnsafePointer<UInt64>, exponent: UnsafeRawBufferPointer,
        engine: Montgomery2048Engine? = nil
    ) {
        // BEGIN optional whole exponentiation (issue 15): an engine with its own ladder runs it.
        if let enginePower = engine?.power {
            enginePower(result, base, exponent)
            return
        }
        // END optional whole exponentiation
        let workspace = Workspace(engine: engine)
        defer { workspace.release() }
        rSquaredLimbs.withUnsafeBufferPointer { rSquared in
            let table = workspace.table
            // table[0] = 1, table[1] = base·R² ·R⁻¹ = base·R (Montgomery form; base < R suffices).
            workspace.setMontgomeryOne(table)
            workspace.multiply(table + 32, base, rSquared.baseAddress!)
            for entry in 2..<Workspace.tableEntryCount {
                let destination = table + entry * 32
                if entry % 2 == 0 {
                    // Public index: base^(2k) = (base^k)².
                    workspace.square(destination, table + (entry / 2) * 32)
                } else {
                    workspace.multiply(destination, table + (entry - 1) * 32, table + 32)
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
                    accumulator.update(from: workspace.selected, count: 32)
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
    /// conditional doubling (add the value to itself masked by the bit, subtract p by mask).
    /// A doubling costs about 1/12 of a squaring, so this is nearly the cost of the squarings
    /// alone. Same operations for every exponent of the same byte length.
    static func powerOfTwo(
        _ result: UnsafeMutablePointer<UInt64>, exponent: UnsafeRawBufferPointer, engine: Montgomery2048Engine? = nil
    ) {
        let workspace = Workspace(engine: engine)
        defer { workspace.release() }
        let accumulator = workspace.accumulator
        workspace.setMontgomeryOne(accumulator)
        for byte in exponent {
            // Bits 7 down to 0. (A `stride` here compiled to a call of the generic iterator's
            // `next()` per bit.)
            for position in 0..<8 {
                workspace.square(accumulator, accumulator)
                workspace.conditionalDouble(accumulator, bit: UInt64((byte &>> UInt8(7 &- position)) & 1))
            }
        }
        workspace.leaveMontgomeryForm(result, accumulator)
    }

    // MARK: Fixed-base comb for base 2

    /// Exponent length (bytes) that has a precomputed comb table: `DHPrivateExponent()`'s 32.
    static let combExponentByteCount = 32
    /// Teeth of the comb: the 256-bit exponent is cut into this many pieces (tables of 2^6 entries).
    static let combTeethCount = 6
    /// Entries in each comb table.
    static let combEntryCount = 1 << combTeethCount
    /// Bits per piece: ⌈256 / 6⌉ = 43 (the last piece has 41 real bits).
    static let combSpacing = (combExponentByteCount * 8 + combTeethCount - 1) / combTeethCount
    /// Each piece is read as two halves of ⌈43 / 2⌉ = 22 and 21 bits, one table per half (Lim–Lee
    /// with two tables): 21 squarings instead of 42 for the same 43 multiplications.
    static let combHalfSpacing = (combSpacing + 1) / 2

    /// Lim–Lee comb tables for 2^e with 256-bit e, in Montgomery form, public constants computed
    /// at first use (2 × 64 entries × 32 limbs, 32 KiB): entry s of table h (h = 0, 1) is
    /// 2^(Σ_t s_t · 2^(43t + 22h)), the product of 2^(2^(43t + 22h)) over the bits t set in s.
    /// Table 1 follows table 0 in the array.
    static let combTableLimbs: [UInt64] = {
        let workspace = Workspace()
        let tables = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * combEntryCount * 32)
        defer {
            workspace.release()
            tables.deallocate()
        }
        for half in 0..<2 {
            let table = tables + half * combEntryCount * 32
            // Entry 1 = 2^(2^(22·half)): Montgomery 2 (1 doubled), squared 22·half times.
            workspace.setMontgomeryOne(table + 32)
            workspace.conditionalDouble(table + 32, bit: 1)
            for _ in 0..<(half * combHalfSpacing) {
                workspace.square(table + 32, table + 32)
            }
            workspace.setMontgomeryOne(table)
            for tooth in 1..<combTeethCount {
                let destination = table + (1 << tooth) * 32
                destination.update(from: table + (1 << (tooth - 1)) * 32, count: 32)
                for _ in 0..<combSpacing {
                    workspace.square(destination, destination)
                }
            }
            for entry in 3..<combEntryCount where entry & (entry - 1) != 0 {
                let lowestBit = entry & (0 &- entry)
                workspace.multiply(table + entry * 32, table + (entry - lowestBit) * 32, table + lowestBit * 32)
            }
        }
        return Array(UnsafeBufferPointer(start: tables, count: 2 * combEntryCount * 32))
    }()

    /// Index into a comb table for exponent bit `column` of every piece: bit (column + 43·t)
    /// of the exponent (counted from the least significant) becomes bit t of the index.
    /// Positions past bit 255 (public) are zero; the bit values are secret and only shifted
    /// and ORed.
    @inline(__always)
    static func combIndex(_ exponent: UnsafeRawBufferPointer, column: Int) -> UInt64 {
        var index: UInt64 = 0
        for tooth in 0..<combTeethCount {
            let bitPosition = column + combSpacing * tooth
            guard bitPosition < combExponentByteCount * 8 else { continue }
            let byte = exponent[combExponentByteCount - 1 - bitPosition / 8]
            index |= UInt64((byte &>> UInt8(bitPosition % 8)) & 1) &<< UInt64(tooth)
        }
        return index
    }

    /// result = 2^exponent mod p for a 32-byte big-endian exponent, by the fixed-base comb
    /// with two tables: 22 steps (columns 21...0), each one squaring (none in the first), one
    /// multiplication by the table-0 entry for bit `column` of every 43-bit piece and, for
    /// columns below 21, one by the table-1 entry for bit `column + 22`. Entries are picked by
    /// masked scans of all 64 (`selectEntry`), so this is constant time in the exponent:
    /// 21 squarings + 42 multiplications instead of 256 squarings + 256 doublings.
    static func powerOfTwoComb(
        _ result: UnsafeMutablePointer<UInt64>, exponent: UnsafeRawBufferPointer, engine: Montgomery2048Engine? = nil
    ) {
        precondition(exponent.count == combExponentByteCount, "comb table is for 32-byte exponents")
        let workspace = Workspace(engine: engine)
        defer { workspace.release() }
        let accumulator = workspace.accumulator
        combTableLimbs.withUnsafeBufferPointer { tables in
            let lowTable = tables.baseAddress!, highTable = lowTable + combEntryCount * 32
            for column in stride(from: combHalfSpacing - 1, through: 0, by: -1) {
                workspace.selectEntry(combIndex(exponent, column: column), from: lowTable, entryCount: combEntryCount)
                if column == combHalfSpacing - 1 {
                    accumulator.update(from: workspace.selected, count: 32)
                } else {
                    workspace.square(accumulator, accumulator)
                    workspace.multiply(accumulator, accumulator, workspace.selected)
                }
                // Bit column + 22 exists in a 43-bit piece only for columns 0...20 (public).
                if column + combHalfSpacing < combSpacing {
                    workspace.selectEntry(combIndex(exponent, column: column + combHalfSpacing),
                                          from: highTable, entryCount: combEntryCount)
                    workspace.multiply(accumulator, accumulator, workspace.selected)
                }
            }
        }
        workspace.leaveMontgomeryForm(result, accumulator)
    }

    // MARK: Conversions (constant time in the values; loops depend on lengths only)

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
