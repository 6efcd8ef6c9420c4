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
        var stream = StreamRegisters(state: state)
        var block = blocks
        for _ in 0..<blockCount {
            let abefSaved = stream.abef, cdghSaved = stream.cdgh
            forEachRoundGroup { group in stream.roundGroup(group, block: block) }
            stream.addChainingValue(abefSaved, cdghSaved)
            block += 64
        }
        stream.store(to: state)
    }

    /// Two independent `compress` calls run together: folds `blockCount` blocks from `blocksA`
    /// into `stateA` and `blockCount` blocks from `blocksB` into `stateB`. Same results as
    /// `compress(stateA, blocksA, blockCount); compress(stateB, blocksB, blockCount)`.
    /// `stateA` and `stateB` must not overlap (the block inputs may). Requires `isSupported`.
    ///
    /// One stream is bound by the latency of `sha256rnds2` (each one needs the previous one's
    /// result); on CPUs that can start one every one or two cycles, interleaving the two streams'
    /// round groups keeps the SHA unit busy with the other stream meanwhile.
    public static func compress2(_ stateA: UnsafeMutablePointer<UInt32>, _ blocksA: UnsafeRawPointer,
                                 _ stateB: UnsafeMutablePointer<UInt32>, _ blocksB: UnsafeRawPointer,
                                 _ blockCount: Int) {
        var streamA = StreamRegisters(state: stateA)
        var streamB = StreamRegisters(state: stateB)
        var blockA = blocksA, blockB = blocksB
        for _ in 0..<blockCount {
            let abefSavedA = streamA.abef, cdghSavedA = streamA.cdgh
            let abefSavedB = streamB.abef, cdghSavedB = streamB.cdgh
            forEachRoundGroup { group in
                streamA.roundGroup(group, block: blockA)
                streamB.roundGroup(group, block: blockB)
            }
            streamA.addChainingValue(abefSavedA, cdghSavedA)
            streamB.addChainingValue(abefSavedB, cdghSavedB)
            blockA += 64
            blockB += 64
        }
        streamA.store(to: stateA)
        streamB.store(to: stateB)
    }

    /// Four independent `compress` calls run together, the multi-stream contract of
    /// `CryptoBackend.SHA256CompressManyFunction` at width four: for each stream s in
    /// 0..<`streamCount` (1...4), folds `blockCount` blocks from `blocks[s]` into `states[s]`.
    /// Four streams run interleaved; three run as a pair and a single, fewer through `compress2`
    /// and `compress`. The states must not overlap. Requires `isSupported`.
    ///
    /// Where `sha256rnds2` can start more often than its latency allows one stream to use it,
    /// four streams keep more of them in flight than two.
    public static func compress4(_ states: UnsafePointer<UnsafeMutablePointer<UInt32>>,
                                 _ blocks: UnsafePointer<UnsafeRawPointer>, _ streamCount: Int, _ blockCount: Int) {
        precondition(streamCount >= 1 && streamCount <= 4, "SHA256Hardware.compress4: 1...4 streams")
        switch streamCount {
        case 1:
            compress(states[0], blocks[0], blockCount)
        case 2:
            compress2(states[0], blocks[0], states[1], blocks[1], blockCount)
        case 3:
            compress2(states[0], blocks[0], states[1], blocks[1], blockCount)
            compress(states[2], blocks[2], blockCount)
        default:
            compressFour(states, blocks, blockCount)
        }
    }

    /// Four streams interleaved round group by round group (see `compress4`).
    private static func compressFour(_ states: UnsafePointer<UnsafeMutablePointer<UInt32>>,
                                     _ blocks: UnsafePointer<UnsafeRawPointer>, _ blockCount: Int) {
        var streamA = StreamRegisters(state: states[0]), streamB = StreamRegisters(state: states[1])
        var streamC = StreamRegisters(state: states[2]), streamD = StreamRegisters(state: states[3])
        var blockA = blocks[0], blockB = blocks[1], blockC = blocks[2], blockD = blocks[3]
        for _ in 0..<blockCount {
            let abefSavedA = streamA.abef, cdghSavedA = streamA.cdgh
            let abefSavedB = streamB.abef, cdghSavedB = streamB.cdgh
            let abefSavedC = streamC.abef, cdghSavedC = streamC.cdgh
            let abefSavedD = streamD.abef, cdghSavedD = streamD.cdgh
            forEachRoundGroup { group in
                streamA.roundGroup(group, block: blockA)
                streamB.roundGroup(group, block: blockB)
                streamC.roundGroup(group, block: blockC)
                streamD.roundGroup(group, block: blockD)
            }
            streamA.addChainingValue(abefSavedA, cdghSavedA)
            streamB.addChainingValue(abefSavedB, cdghSavedB)
            streamC.addChainingValue(abefSavedC, cdghSavedC)
            streamD.addChainingValue(abefSavedD, cdghSavedD)
            blockA += 64; blockB += 64; blockC += 64; blockD += 64
        }
        streamA.store(to: states[0]); streamB.store(to: states[1])
        streamC.store(to: states[2]); streamD.store(to: states[3])
    }

    /// Calls `body` with 0, 1, ... 15, written out so that after inlining every group number is
    /// a constant and each `roundGroup` folds down to straight-line code.
    @inline(__always)
    private static func forEachRoundGroup(_ body: (_ group: Int) -> Void) {
        body(0); body(1); body(2); body(3); body(4); body(5); body(6); body(7)
        body(8); body(9); body(10); body(11); body(12); body(13); body(14); body(15)
    }

    /// The registers of one compression stream: the working variables and the four message
    /// vectors of the rolling schedule.
    private struct StreamRegisters {
        /// sha256rnds2 keeps the working variables as two vectors, lanes high to low
        /// (A, B, E, F) and (C, D, G, H); lane 0 holds F and H respectively.
        var abef: __m128i
        var cdgh: __m128i
        /// Message vectors: during group g, `message(g % 4)` holds W[4g...4g+3] (W[4g] in lane 0).
        var message0: __m128i
        var message1: __m128i
        var message2: __m128i
        var message3: __m128i

        /// Loads the chaining value H0...H7 from `state`.
        @inline(__always)
        init(state: UnsafeMutablePointer<UInt32>) {
            abef = vector(Words(state[5], state[4], state[1], state[0]))
            cdgh = vector(Words(state[7], state[6], state[3], state[2]))
            let zero = _mm_setzero_si128()
            message0 = zero; message1 = zero; message2 = zero; message3 = zero
        }

        /// Writes the chaining value back to `state`.
        @inline(__always)
        func store(to state: UnsafeMutablePointer<UInt32>) {
            let abefWords = words(abef), cdghWords = words(cdgh)
            state[0] = abefWords[3]; state[1] = abefWords[2]; state[4] = abefWords[1]; state[5] = abefWords[0]
            state[2] = cdghWords[3]; state[3] = cdghWords[2]; state[6] = cdghWords[1]; state[7] = cdghWords[0]
        }

        /// Ends a block: adds the chaining value the block started from (FIPS 180-4 §6.2.2 step 4).
        @inline(__always)
        mutating func addChainingValue(_ abefSaved: __m128i, _ cdghSaved: __m128i) {
            abef = _mm_add_epi32(abef, abefSaved)
            cdgh = _mm_add_epi32(cdgh, cdghSaved)
        }

        /// Message vector `index % 4`.
        @inline(__always)
        func message(_ index: Int) -> __m128i {
            switch index & 3 {
            case 0: return message0
            case 1: return message1
            case 2: return message2
            default: return message3
            }
        }

        /// Replaces message vector `index % 4`.
        @inline(__always)
        mutating func setMessage(_ index: Int, _ value: __m128i) {
            switch index & 3 {
            case 0: message0 = value
            case 1: message1 = value
            case 2: message2 = value
            default: message3 = value
            }
        }

        /// Rounds 4g...4g+3 of the block at `block` (g = `group`, 0...15, a constant after inlining).
        ///
        /// Groups 0-3 load W[4g...4g+3] from the block. Group g uses message vector g mod 4;
        /// groups 3-14 also complete W for group g+1 (sha256msg2) and groups 1-12 start W for
        /// group g+3 (sha256msg1) in the vector group g-1 has finished with.
        @inline(__always)
        mutating func roundGroup(_ group: Int, block: UnsafeRawPointer) {
            if group < 4 {
                // Message words are big-endian: pshufb reverses the bytes of each 32-bit lane.
                let byteSwap = _mm_set_epi64x(0x0c0d0e0f_08090a0b, 0x04050607_00010203)
                let raw = _mm_loadu_si128((block + 16 * group).assumingMemoryBound(to: __m128i_u.self))
                setMessage(group, _mm_shuffle_epi8(raw, byteSwap))
            }
            roundPair(&abef, &cdgh, message(group), roundConstants(group))
            if group >= 3 && group <= 14 {
                setMessage(group + 1, scheduleFinish(message(group + 1), message(group), message(group - 1)))
            }
            if group >= 1 && group <= 12 {
                setMessage(group - 1, sha256Message1(message(group - 1), message(group)))
            }
        }
    }

    /// K[4g...4g+3] (FIPS 180-4 §4.2.2) for round group `group`; a constant after inlining.
    @inline(__always)
    private static func roundConstants(_ group: Int) -> Words {
        switch group {
        case 0: return Words(0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5)
        case 1: return Words(0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5)
        case 2: return Words(0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3)
        case 3: return Words(0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174)
        case 4: return Words(0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc)
        case 5: return Words(0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da)
        case 6: return Words(0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7)
        case 7: return Words(0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967)
        case 8: return Words(0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13)
        case 9: return Words(0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85)
        case 10: return Words(0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3)
        case 11: return Words(0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070)
        case 12: return Words(0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5)
        case 13: return Words(0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3)
        case 14: return Words(0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208)
        default: return Words(0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2)
        }
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
