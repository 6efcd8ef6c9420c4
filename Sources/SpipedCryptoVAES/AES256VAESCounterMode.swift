import _Builtin_intrinsics.intel

/// AES-256-CTR with VAES on 256-bit registers: each `vaesenc ymm` runs one AES round on two
/// blocks at once, so eight registers keep sixteen blocks in flight.
///
/// This module is compiled with `-mavx2 -mvaes`, which lets the compiler use AVX encodings
/// anywhere in it; that is why it holds nothing but this kernel. Call it only after
/// `AES256Hardware.isVectorAESSupported` (CPUID *and* the OS saving YMM state) is true and the
/// known-answer self-test has passed; otherwise the CPU raises an invalid-opcode fault.
/// The key schedule is `AES256Hardware`'s: the 15 FIPS 197 round keys, 16 bytes each, in
/// order, 16-byte aligned. The function ends with `vzeroupper` (the compiler adds it at every
/// exit and call), so SSE code that runs next pays no AVX→SSE transition.
public enum AES256VAESCounterMode {
    /// CTR mode with the contract of `AES256Engine.ctrXor`: XORs `count` bytes of keystream
    /// into `output = input ^ keystream` (the buffers may be the same memory). The first counter
    /// block is the 128-bit big-endian value `counterHigh << 64 | counterLow`, incremented as a
    /// 128-bit integer per block; a partial final block uses the leading bytes of its keystream.
    ///
    /// Sixteen blocks (256 bytes) per pass, then two blocks per pass, then the last one or two
    /// (possibly partial) blocks through a 32-byte stack buffer.
    /// `@inline(never)`: its AVX code must stay in this module, never be inlined into a caller
    /// compiled for plain SSE.
    @inline(never)
    public static func ctrXor(_ schedule: UnsafeRawPointer, _ counterHigh: UInt64, _ counterLow: UInt64,
                              _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ count: Int) {
        var high = counterHigh
        var low = counterLow
        /// The next two counter blocks, be64(high) || be64(low) for `low` and then `low + 1`
        /// (with the 128-bit carry), one per 128-bit lane, and the counter advanced by two.
        @inline(__always) func nextCounterPair() -> __m256i {
            let firstHigh = high, firstLow = low
            low &+= 1
            if low == 0 { high &+= 1 }
            let pair = __m256i(Int64(bitPattern: firstHigh.byteSwapped), Int64(bitPattern: firstLow.byteSwapped),
                               Int64(bitPattern: high.byteSwapped), Int64(bitPattern: low.byteSwapped))
            low &+= 1
            if low == 0 { high &+= 1 }
            return pair
        }
        /// Round key `index` (0...14) copied into both 128-bit lanes (`vbroadcasti128`).
        @inline(__always) func roundKey(_ index: Int) -> __m256i {
            _mm256_broadcastsi128_si256(schedule.load(fromByteOffset: 16 * index, as: __m128i.self))
        }
        /// All 14 rounds on a register of two counter blocks (round key 0 not yet applied).
        @inline(__always) func encryptPair(_ counters: __m256i) -> __m256i {
            var state = _mm256_xor_si256(counters, roundKey(0))
            for round in 1..<14 { state = _mm256_aesenc_epi128(state, roundKey(round)) }
            return _mm256_aesenclast_epi128(state, roundKey(14))
        }
        // Reverses the 16 bytes of each lane (`vpshufb` shuffles within lanes): turns the
        // little-endian form (low, high) of a counter into its big-endian counter block.
        let reverseBytes = unsafeBitCast(SIMD32<UInt8>(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
                                                       15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         to: __m256i.self)
        var offset = 0
        while count - offset >= 256 {
            let key0 = roundKey(0)
            var s0, s1, s2, s3, s4, s5, s6, s7: __m256i
            if low <= UInt64.max - 16 {
                // Common case: the low half does not wrap within these sixteen blocks, so each
                // register is one 64-bit vector add on the little-endian counters
                // (low, high, low, high) and a byte reversal per lane.
                let base = __m256i(Int64(bitPattern: low), Int64(bitPattern: high), Int64(bitPattern: low), Int64(bitPattern: high))
                @inline(__always) func pair(_ first: Int64) -> __m256i {
                    _mm256_xor_si256(_mm256_shuffle_epi8(_mm256_add_epi64(base, __m256i(first, 0, first + 1, 0)), reverseBytes), key0)
                }
                s0 = pair(0); s1 = pair(2); s2 = pair(4); s3 = pair(6)
                s4 = pair(8); s5 = pair(10); s6 = pair(12); s7 = pair(14)
                low &+= 16
            } else {
                s0 = _mm256_xor_si256(nextCounterPair(), key0); s1 = _mm256_xor_si256(nextCounterPair(), key0)
                s2 = _mm256_xor_si256(nextCounterPair(), key0); s3 = _mm256_xor_si256(nextCounterPair(), key0)
                s4 = _mm256_xor_si256(nextCounterPair(), key0); s5 = _mm256_xor_si256(nextCounterPair(), key0)
                s6 = _mm256_xor_si256(nextCounterPair(), key0); s7 = _mm256_xor_si256(nextCounterPair(), key0)
            }
            for round in 1..<14 {
                let key = roundKey(round)
                s0 = _mm256_aesenc_epi128(s0, key); s1 = _mm256_aesenc_epi128(s1, key)
                s2 = _mm256_aesenc_epi128(s2, key); s3 = _mm256_aesenc_epi128(s3, key)
                s4 = _mm256_aesenc_epi128(s4, key); s5 = _mm256_aesenc_epi128(s5, key)
                s6 = _mm256_aesenc_epi128(s6, key); s7 = _mm256_aesenc_epi128(s7, key)
            }
            let key14 = roundKey(14)
            s0 = _mm256_aesenclast_epi128(s0, key14); s1 = _mm256_aesenclast_epi128(s1, key14)
            s2 = _mm256_aesenclast_epi128(s2, key14); s3 = _mm256_aesenclast_epi128(s3, key14)
            s4 = _mm256_aesenclast_epi128(s4, key14); s5 = _mm256_aesenclast_epi128(s5, key14)
            s6 = _mm256_aesenclast_epi128(s6, key14); s7 = _mm256_aesenclast_epi128(s7, key14)
            xorPair(input, output, offset, s0); xorPair(input, output, offset + 32, s1)
            xorPair(input, output, offset + 64, s2); xorPair(input, output, offset + 96, s3)
            xorPair(input, output, offset + 128, s4); xorPair(input, output, offset + 160, s5)
            xorPair(input, output, offset + 192, s6); xorPair(input, output, offset + 224, s7)
            offset += 256
        }
        // Fewer than sixteen blocks left: two at a time (the passes are independent, so the
        // processor overlaps them), then the last one or two through a stack buffer.
        while count - offset >= 32 {
            xorPair(input, output, offset, encryptPair(nextCounterPair()))
            offset += 32
        }
        let tailCount = count - offset
        if tailCount > 0 {
            // Only the leading `tailCount` bytes of this keystream pair are used.
            var buffer = __m256i(0, 0, 0, 0)
            withUnsafeMutableBytes(of: &buffer) { bytes in
                bytes.baseAddress!.copyMemory(from: input + offset, byteCount: tailCount)
                xorPair(UnsafeRawPointer(bytes.baseAddress!), bytes.baseAddress!, 0, encryptPair(nextCounterPair()))
                (output + offset).copyMemory(from: bytes.baseAddress!, byteCount: tailCount)
            }
        }
    }

    /// output[offset..<offset+32] = input[offset..<offset+32] ⊕ keystream (two blocks).
    @inline(__always)
    static func xorPair(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ offset: Int, _ keystream: __m256i) {
        let data = input.loadUnaligned(fromByteOffset: offset, as: __m256i.self)
        output.storeBytes(of: _mm256_xor_si256(data, keystream), toByteOffset: offset, as: __m256i.self)
    }
}
