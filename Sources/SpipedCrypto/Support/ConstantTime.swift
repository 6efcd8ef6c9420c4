/// Comparisons and selections whose running time does not depend on secret values.
///
/// Constant time here means: no branch and no memory index depends on the contents of the
/// inputs, only on their lengths. The compiler may turn mask arithmetic back into branches or
/// address selects when it can see where a mask came from (it did so for the DH table scan):
/// code that selects with a secret mask passes the mask through memory and an opaque function
/// first (`hideFromOptimizer`). `equal` compiles to XOR/OR loops whose only branches depend on
/// the length. `scripts/check-constant-time` (a CI stage) checks the release binaries'
/// machine code for these functions and the DH and AES kernels: no branch and no memory address
/// may depend on a secret (SECURITY.md gives the rule).
public enum ConstantTime {
    /// An optimisation barrier for secret masks: does nothing, but the optimiser must assume it
    /// may have read and changed the memory at `words`, so values loaded from there afterwards
    /// are unknown to it and mask arithmetic on them cannot be turned back into comparisons,
    /// branches or address selects. `@_optimize(none)` keeps the body opaque (LLVM infers no
    /// attributes for an `optnone` function); `@inline(never)` keeps the call. Costs one call.
    @_optimize(none) @inline(never)
    public static func hideFromOptimizer(_ words: UnsafeMutablePointer<UInt64>) {}

    /// True when the buffers are equal; time depends only on the length.
    ///
    /// Buffers of different lengths are unequal at once (lengths are public). Otherwise every
    /// byte pair is XORed and the differences are ORed together, with no early exit. Never
    /// inlined, so the MAC checks run the one copy `scripts/check-constant-time` checks.
    @inline(never)
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count {
            difference |= a[index] ^ b[index]
        }
        return difference == 0
    }

    /// The OR of the XORs of the byte pairs: 0 exactly when the buffers are equal (same length
    /// required; lengths are public). No early exit, so the time depends only on the length;
    /// the caller turns the result into a mask without branching on it.
    public static func difference(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> UInt8 {
        precondition(a.count == b.count, "constant-time difference of buffers of different lengths")
        var difference: UInt8 = 0
        for index in 0..<a.count {
            difference |= a[index] ^ b[index]
        }
        return difference
    }

    /// True when the arrays are equal; time depends only on the length.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { aBytes in
            b.withUnsafeBytes { bBytes in equal(aBytes, bBytes) }
        }
    }

    /// All ones when `bit` is 1, zero when it is 0 (`bit` must be 0 or 1). No branch.
    @inline(__always)
    static func mask(fromBit bit: UInt64) -> UInt64 {
        0 &- bit
    }

    /// All ones when `a == b`, zero otherwise, without a branch.
    @inline(__always)
    static func equalMask(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let difference = a ^ b
        // (d | -d) has its top bit set exactly when d != 0.
        let nonZeroBit = (difference | (0 &- difference)) >> 63
        return nonZeroBit &- 1
    }

    /// `whenOnes` where `mask` is all ones, `whenZero` where it is zero.
    @inline(__always)
    static func select(_ mask: UInt64, _ whenOnes: UInt64, _ whenZero: UInt64) -> UInt64 {
        (whenOnes & mask) | (whenZero & ~mask)
    }
}
