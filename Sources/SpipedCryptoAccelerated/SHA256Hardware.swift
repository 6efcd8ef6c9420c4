import SpipedCrypto
import _Builtin_intrinsics.intel
import _Builtin_intrinsics.intel.cpuid

/// SHA-256 compression with the x86 SHA extensions (SHA-NI: `sha256rnds2`, `sha256msg1`,
/// `sha256msg2`), plus SSSE3 `pshufb` for the byte swap and SSE4.1 shuffles.
///
/// Same contract as `SHA256Portable.compress`. Constant time: the instructions' timing does not
/// depend on their operands and there are no data-dependent branches or memory indexes.
public enum SHA256Hardware {
    /// True when the CPU has SHA-NI (CPUID leaf 7 EBX bit 29), SSSE3 (leaf 1 ECX bit 9) and
    /// SSE4.1 (leaf 1 ECX bit 19). Calling `compress` on a CPU without them traps.
    public static var isSupported: Bool { cpuHasFeatures }

    /// CPUID, read once.
    private static let cpuHasFeatures: Bool = {
        var eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
        // __get_cpuid* return 0 when the leaf is above the CPU's maximum.
        guard __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 else { return false }
        let hasSSSE3 = ecx & (1 << 9) != 0
        let hasSSE41 = ecx & (1 << 19) != 0
        guard __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 else { return false }
        let hasSHA = ebx & (1 << 29) != 0
        return hasSHA && hasSSSE3 && hasSSE41
    }()

    /// Four 32-bit lanes, lane 0 lowest: the view used for constants and lane shuffles.
    private typealias Words = SIMD4<UInt32>

    /// Folds `blockCount` 64-byte blocks starting at `blocks` into the eight state words at
    /// `state` (H0...H7 as native integers). Requires `isSupported`.
    public static func compress(_ state: UnsafeMutablePointer<UInt32>, _ blocks: UnsafeRawPointer, _ blockCount: Int) {
        // sha256rnds2 keeps the working variables as two vectors, lanes high to low
        // (A, B, E, F) and (C, D, G, H); lane 0 holds F and H respectively.
        var abef = vector(Words(state[5], state[4], state[1], state[0]))
        var cdgh = vector(Words(state[7], state[6], state[3], state[2]))
        // pshufb mask reversing the bytes of each 32-bit lane: message words are big-endian.
        let byteSwap = _mm_set_epi64x(0x0c0d0e0f_08090a0b, 0x04050607_00010203)

        /// Message word vector `index` (W[4i...4i+3], W[4i] in lane 0) of a block.
        @inline(__always)
        func loadMessage(_ block: UnsafeRawPointer, _ index: Int) -> __m128i {
            let raw = _mm_loadu_si128((block + 16 * index).assumingMemoryBound(to: __m128i_u.self))
            return _mm_shuffle_epi8(raw, byteSwap)
        }

        var block = blocks
        for _ in 0..<blockCount {
            let abefSaved = abef, cdghSaved = cdgh
            var message0: __m128i, message1: __m128i, message2: __m128i, message3: __m128i
            // 16 groups of four rounds. Group g uses message vector g mod 4 (W[4g...4g+3]); from
            // group 3 on, each group also completes W for group g+1 (sha256msg2) and starts
            // W for group g+3 (sha256msg1) in the vector group g-1 has finished with.
            // The hex literals are K[4g...4g+3].
            // Rounds 0-3
            message0 = loadMessage(block, 0)
            roundPair(&abef, &cdgh, message0, Words(0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5))
            // Rounds 4-7
            message1 = loadMessage(block, 1)
            roundPair(&abef, &cdgh, message1, Words(0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5))
            message0 = sha256Message1(message0, message1)
            // Rounds 8-11
            message2 = loadMessage(block, 2)
            roundPair(&abef, &cdgh, message2, Words(0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3))
            message1 = sha256Message1(message1, message2)
            // Rounds 12-15
            message3 = loadMessage(block, 3)
            roundPair(&abef, &cdgh, message3, Words(0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174))
            message0 = scheduleFinish(message0, message3, message2)
            message2 = sha256Message1(message2, message3)
            // Rounds 16-19
            roundPair(&abef, &cdgh, message0, Words(0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc))
            message1 = scheduleFinish(message1, message0, message3)
            message3 = sha256Message1(message3, message0)
            // Rounds 20-23
            roundPair(&abef, &cdgh, message1, Words(0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da))
            message2 = scheduleFinish(message2, message1, message0)
            message0 = sha256Message1(message0, message1)
            // Rounds 24-27
            roundPair(&abef, &cdgh, message2, Words(0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7))
            message3 = scheduleFinish(message3, message2, message1)
            message1 = sha256Message1(message1, message2)
            // Rounds 28-31
            roundPair(&abef, &cdgh, message3, Words(0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967))
            message0 = scheduleFinish(message0, message3, message2)
            message2 = sha256Message1(message2, message3)
            // Rounds 32-35
            roundPair(&abef, &cdgh, message0, Words(0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13))
            message1 = scheduleFinish(message1, message0, message3)
            message3 = sha256Message1(message3, message0)
            // Rounds 36-39
            roundPair(&abef, &cdgh, message1, Words(0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85))
            message2 = scheduleFinish(message2, message1, message0)
            message0 = sha256Message1(message0, message1)
            // Rounds 40-43
            roundPair(&abef, &cdgh, message2, Words(0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3))
            message3 = scheduleFinish(message3, message2, message1)
            message1 = sha256Message1(message1, message2)
            // Rounds 44-47
            roundPair(&abef, &cdgh, message3, Words(0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070))
            message0 = scheduleFinish(message0, message3, message2)
            message2 = sha256Message1(message2, message3)
            // Rounds 48-51
            roundPair(&abef, &cdgh, message0, Words(0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5))
            message1 = scheduleFinish(message1, message0, message3)
            message3 = sha256Message1(message3, message0)
            // Rounds 52-55
            roundPair(&abef, &cdgh, message1, Words(0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3))
            message2 = scheduleFinish(message2, message1, message0)
            // Rounds 56-59
            roundPair(&abef, &cdgh, message2, Words(0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208))
            message3 = scheduleFinish(message3, message2, message1)
            // Rounds 60-63
            roundPair(&abef, &cdgh, message3, Words(0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2))

            abef = _mm_add_epi32(abef, abefSaved)
            cdgh = _mm_add_epi32(cdgh, cdghSaved)
            block += 64
        }

        let abefWords = words(abef), cdghWords = words(cdgh)
        state[0] = abefWords[3]; state[1] = abefWords[2]; state[4] = abefWords[1]; state[5] = abefWords[0]
        state[2] = cdghWords[3]; state[3] = cdghWords[2]; state[6] = cdghWords[1]; state[7] = cdghWords[0]
    }

    /// Four rounds: two `sha256rnds2`, the first using K+W lanes 0-1, the second lanes 2-3
    /// (moved down to lanes 0-1). Each `sha256rnds2` updates the half that rotates in.
    @inline(__always)
    private static func roundPair(_ abef: inout __m128i, _ cdgh: inout __m128i, _ message: __m128i, _ constants: Words) {
        let constantPlusWords = _mm_add_epi32(message, vector(constants))
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, constantPlusWords)
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_unpackhi_epi64(constantPlusWords, constantPlusWords))
    }

    /// Completes the next message vector: `sha256msg1` already added σ0 terms to `next`; this adds
    /// W[t-7] (lanes 1-3 of `previous` and lane 0 of `current`) and lets `sha256msg2` add σ1.
    @inline(__always)
    private static func scheduleFinish(_ next: __m128i, _ current: __m128i, _ previous: __m128i) -> __m128i {
        let previousWords = words(previous), currentWords = words(current)
        // palignr(current, previous, 4 bytes): W[t-7] ... W[t-4] for the four new words.
        let minus7 = vector(Words(previousWords[1], previousWords[2], previousWords[3], currentWords[0]))
        return _mm_sha256msg2_epu32(_mm_add_epi32(next, minus7), current)
    }

    /// `sha256msg1`: adds σ0 of the following words to `older` (first half of the schedule step).
    @inline(__always)
    private static func sha256Message1(_ older: __m128i, _ newer: __m128i) -> __m128i {
        _mm_sha256msg1_epu32(older, newer)
    }

    /// Reinterprets a vector as four 32-bit lanes.
    @inline(__always)
    private static func words(_ vector: __m128i) -> Words { unsafeBitCast(vector, to: Words.self) }

    /// Reinterprets four 32-bit lanes as a vector.
    @inline(__always)
    private static func vector(_ words: Words) -> __m128i { unsafeBitCast(words, to: __m128i.self) }
}
