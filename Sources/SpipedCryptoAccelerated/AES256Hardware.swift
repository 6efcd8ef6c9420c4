import SpipedCrypto
import SpipedCryptoVAES
import _Builtin_intrinsics.intel
import _Builtin_intrinsics.intel.cpuid

/// AES-256 with the AES-NI instructions (constant time by construction: the CPU does the
/// S-box lookups in hardware, with no data-dependent memory access or branch).
///
/// The schedule is the 15 round keys of FIPS 197 in order, 16 bytes each. CTR mode keeps eight
/// blocks in flight so the pipelined `aesenc` units stay busy. `vectorEngine` shares the key
/// schedule and single-block code but runs CTR mode with VAES on 256-bit registers.
public enum AES256Hardware {
    /// Bytes of schedule: 15 round keys of 16 bytes.
    static let scheduleByteCount = 15 * 16

    /// True when the CPU has AES-NI (CPUID leaf 1, ECX bit 25) plus SSSE3 (bit 9, for `pshufb`)
    /// and SSE4.1 (bit 19; this module is compiled with `-msse4.1`, so the compiler may use it).
    public static var isSupported: Bool {
        var eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
        guard __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 else { return false }
        let required: UInt32 = (1 << 25) | (1 << 19) | (1 << 9)
        return ecx & required == required
    }

    /// The engine. Call its functions only when `isSupported` is true (otherwise the CPU raises
    /// an invalid-opcode fault).
    public static let engine = AES256Engine(
        scheduleByteCount: scheduleByteCount,
        expandKey: expandKey(_:into:),
        encryptBlock: encryptBlock,
        ctrXor: ctrXor
    )

    /// True when the VAES engine can run: AES-NI as for `isSupported`, plus VAES (CPUID leaf 7
    /// ECX bit 9) and AVX2 (leaf 7 EBX bit 5), *and* the operating system saves the YMM
    /// registers across context switches (XCR0 bits 1 and 2, readable with XGETBV once leaf 1
    /// ECX bit 27, OSXSAVE, is set).
    ///
    /// Swift cannot emit XGETBV (clang's `_xgetbv` is a macro), so the OS half comes from glibc:
    /// `__x86_get_cpuid_feature_leaf` (glibc 2.33+, `<sys/platform/x86.h>`) returns glibc's
    /// feature table, whose "active" bits for AVX2 and VAES glibc sets at start-up only after
    /// its own XGETBV shows XMM and YMM state enabled. The function is linked directly (not
    /// looked up with dlsym), so this works in the static-pie release build as well.
    public static var isVectorAESSupported: Bool {
        guard isSupported else { return false }
        var eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
        guard __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0, ecx & (1 << 27) != 0 else { return false }
        guard __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0,
              ebx & (1 << 5) != 0, ecx & (1 << 9) != 0 else { return false }
        return glibcReportsVectorAESActive()
    }

    /// glibc's verdict that AVX2 and VAES are usable (CPU and OS). Layout from
    /// `<bits/platform/x86.h>`: the table for
    /// index 1 (`CPUID_INDEX_7`) is `struct cpuid_feature { unsigned cpuid_array[4];
    /// unsigned active_array[4]; }`, registers in the order EAX, EBX, ECX, EDX.
    private static func glibcReportsVectorAESActive() -> Bool {
        guard let leaf7 = glibc_x86_get_cpuid_feature_leaf(1) else { return false }
        let activeEBX = leaf7.load(fromByteOffset: 4 * 5, as: UInt32.self)
        let activeECX = leaf7.load(fromByteOffset: 4 * 6, as: UInt32.self)
        return activeEBX & (1 << 5) != 0 && activeECX & (1 << 9) != 0
    }

    /// The VAES engine: AES-NI key expansion and single blocks, CTR mode sixteen blocks at a
    /// time on 256-bit registers (`AES256VAESCounterMode`). Call its functions only when
    /// `isVectorAESSupported` is true.
    public static let vectorEngine = AES256Engine(
        scheduleByteCount: scheduleByteCount,
        expandKey: expandKey(_:into:),
        encryptBlock: encryptBlock,
        ctrXor: AES256VAESCounterMode.ctrXor
    )

    /// Known-answer self-test (FIPS 197 Appendix C.3, AES-256 single block), for the start-up
    /// check of the backend selection. False when unsupported or when the result is wrong.
    public static func passesSelfTest() -> Bool {
        guard isSupported else { return false }
        let key: [UInt8] = Array(0..<32)
        let plaintext: [UInt8] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
        let expected: [UInt8] = [0x8e, 0xa2, 0xb7, 0xca, 0x51, 0x67, 0x45, 0xbf,
                                 0xea, 0xfc, 0x49, 0x90, 0x4b, 0x49, 0x60, 0x89]
        var output = [UInt8](repeating: 0, count: 16)
        let schedule = UnsafeMutableRawPointer.allocate(byteCount: scheduleByteCount, alignment: 16)
        defer { schedule.deallocate() }
        key.withUnsafeBytes { expandKey($0.baseAddress!, into: schedule) }
        plaintext.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { encryptBlock(schedule, input.baseAddress!, $0.baseAddress!) }
        }
        return output == expected
    }

    // MARK: Key expansion

    /// A `pshufb` mask from 16 byte indices (0x80 = write a zero byte).
    @inline(__always)
    static func shuffleMask(_ bytes: SIMD16<UInt8>) -> __m128i {
        unsafeBitCast(bytes, to: __m128i.self)
    }

    /// x ⊕ (x shifted up one word) ⊕ (two words) ⊕ (three words): the running XOR of the
    /// previous round key's words that FIPS 197 key expansion applies (w[i] = w[i-8] ⊕ ...).
    @inline(__always)
    static func prefixXor(_ x: __m128i) -> __m128i {
        let up4 = shuffleMask(SIMD16(0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11))
        let up8 = shuffleMask(SIMD16(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 4, 5, 6, 7))
        let once = _mm_xor_si128(x, _mm_shuffle_epi8(x, up4))
        return _mm_xor_si128(once, _mm_shuffle_epi8(once, up8))
    }

    /// FIPS 197 §5.2 key expansion. `aeskeygenassist` needs an immediate operand, which Swift
    /// cannot pass, so SubWord uses `aesenclast` instead: when every column of the state holds
    /// the same word, ShiftRows changes nothing, so `aesenclast(broadcast(w), k)` is
    /// SubWord(w) ⊕ k in every column.
    static func expandKey(_ key: UnsafeRawPointer, into schedule: UnsafeMutableRawPointer) {
        // Word 3 rotated (RotWord) and copied to all four columns; word 3 copied unrotated.
        let rotatedLastWord = shuffleMask(SIMD16(13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12))
        let lastWord = shuffleMask(SIMD16(12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15))
        let zero = _mm_setzero_si128()
        var even = key.loadUnaligned(as: __m128i.self)
        var odd = key.loadUnaligned(fromByteOffset: 16, as: __m128i.self)
        schedule.storeBytes(of: even, as: __m128i.self)
        schedule.storeBytes(of: odd, toByteOffset: 16, as: __m128i.self)
        var roundConstant: UInt32 = 1
        for pair in 1...7 {
            let constant = unsafeBitCast(SIMD4<UInt32>(repeating: roundConstant), to: __m128i.self)
            let mixed = _mm_aesenclast_si128(_mm_shuffle_epi8(odd, rotatedLastWord), constant)
            even = _mm_xor_si128(prefixXor(even), mixed)
            schedule.storeBytes(of: even, toByteOffset: 32 * pair, as: __m128i.self)
            if pair == 7 { break }  // AES-256 needs 15 round keys: the last pair has only one
            let substituted = _mm_aesenclast_si128(_mm_shuffle_epi8(even, lastWord), zero)
            odd = _mm_xor_si128(prefixXor(odd), substituted)
            schedule.storeBytes(of: odd, toByteOffset: 32 * pair + 16, as: __m128i.self)
            roundConstant <<= 1
        }
    }

    // MARK: Encryption

    /// Round key `index` (0...14).
    @inline(__always)
    static func roundKey(_ schedule: UnsafeRawPointer, _ index: Int) -> __m128i {
        schedule.load(fromByteOffset: 16 * index, as: __m128i.self)
    }

    /// Encrypts one block held in a register.
    @inline(__always)
    static func encrypt(_ block: __m128i, _ schedule: UnsafeRawPointer) -> __m128i {
        var state = _mm_xor_si128(block, roundKey(schedule, 0))
        for round in 1..<14 {
            state = _mm_aesenc_si128(state, roundKey(schedule, round))
        }
        return _mm_aesenclast_si128(state, roundKey(schedule, 14))
    }

    /// Encrypts one 16-byte block.
    static func encryptBlock(_ schedule: UnsafeRawPointer, _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) {
        output.storeBytes(of: encrypt(input.loadUnaligned(as: __m128i.self), schedule), as: __m128i.self)
    }

    /// CTR mode; see `AES256Engine.ctrXor`. Eight blocks per pass, then single blocks, then a
    /// partial block through a 16-byte stack buffer.
    static func ctrXor(_ schedule: UnsafeRawPointer, _ counterHigh: UInt64, _ counterLow: UInt64,
                       _ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ count: Int) {
        var high = counterHigh
        var low = counterLow
        /// The next counter block, be64(high) || be64(low), then the 128-bit increment.
        @inline(__always) func nextCounterBlock() -> __m128i {
            let block = __m128i(Int64(bitPattern: high.byteSwapped), Int64(bitPattern: low.byteSwapped))
            low &+= 1
            if low == 0 { high &+= 1 }
            return block
        }
        // Reverses all 16 bytes: turns the little-endian form (low, high) into the counter block.
        let reverseBytes = shuffleMask(SIMD16(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0))
        var offset = 0
        while count - offset >= 128 {
            let key0 = roundKey(schedule, 0)
            var b0, b1, b2, b3, b4, b5, b6, b7: __m128i
            if low <= UInt64.max - 8 {
                // Common case: the low half does not overflow within these eight blocks, so each
                // block is one 64-bit vector add on the little-endian counter and a byte reversal.
                let base = __m128i(Int64(bitPattern: low), Int64(bitPattern: high))
                @inline(__always) func block(_ step: Int64) -> __m128i {
                    _mm_xor_si128(_mm_shuffle_epi8(_mm_add_epi64(base, __m128i(step, 0)), reverseBytes), key0)
                }
                b0 = block(0); b1 = block(1); b2 = block(2); b3 = block(3)
                b4 = block(4); b5 = block(5); b6 = block(6); b7 = block(7)
                low &+= 8
            } else {
                b0 = _mm_xor_si128(nextCounterBlock(), key0); b1 = _mm_xor_si128(nextCounterBlock(), key0)
                b2 = _mm_xor_si128(nextCounterBlock(), key0); b3 = _mm_xor_si128(nextCounterBlock(), key0)
                b4 = _mm_xor_si128(nextCounterBlock(), key0); b5 = _mm_xor_si128(nextCounterBlock(), key0)
                b6 = _mm_xor_si128(nextCounterBlock(), key0); b7 = _mm_xor_si128(nextCounterBlock(), key0)
            }
            for round in 1..<14 {
                let key = roundKey(schedule, round)
                b0 = _mm_aesenc_si128(b0, key); b1 = _mm_aesenc_si128(b1, key)
                b2 = _mm_aesenc_si128(b2, key); b3 = _mm_aesenc_si128(b3, key)
                b4 = _mm_aesenc_si128(b4, key); b5 = _mm_aesenc_si128(b5, key)
                b6 = _mm_aesenc_si128(b6, key); b7 = _mm_aesenc_si128(b7, key)
            }
            let key14 = roundKey(schedule, 14)
            b0 = _mm_aesenclast_si128(b0, key14); b1 = _mm_aesenclast_si128(b1, key14)
            b2 = _mm_aesenclast_si128(b2, key14); b3 = _mm_aesenclast_si128(b3, key14)
            b4 = _mm_aesenclast_si128(b4, key14); b5 = _mm_aesenclast_si128(b5, key14)
            b6 = _mm_aesenclast_si128(b6, key14); b7 = _mm_aesenclast_si128(b7, key14)
            xorBlock(input, output, offset, b0); xorBlock(input, output, offset + 16, b1)
            xorBlock(input, output, offset + 32, b2); xorBlock(input, output, offset + 48, b3)
            xorBlock(input, output, offset + 64, b4); xorBlock(input, output, offset + 80, b5)
            xorBlock(input, output, offset + 96, b6); xorBlock(input, output, offset + 112, b7)
            offset += 128
        }
        while count - offset >= 16 {
            xorBlock(input, output, offset, encrypt(nextCounterBlock(), schedule))
            offset += 16
        }
        if offset < count {
            // Partial final block: only its leading bytes of keystream are used.
            var keystream = encrypt(nextCounterBlock(), schedule)
            withUnsafeBytes(of: &keystream) { stream in
                for index in 0..<(count - offset) {
                    output.storeBytes(of: input.load(fromByteOffset: offset + index, as: UInt8.self) ^ stream[index],
                                      toByteOffset: offset + index, as: UInt8.self)
                }
            }
        }
    }

    /// output[offset..<offset+16] = input[offset..<offset+16] ⊕ keystream.
    @inline(__always)
    static func xorBlock(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ offset: Int, _ keystream: __m128i) {
        let data = input.loadUnaligned(fromByteOffset: offset, as: __m128i.self)
        output.storeBytes(of: _mm_xor_si128(data, keystream), toByteOffset: offset, as: __m128i.self)
    }
}

/// `const struct cpuid_feature *__x86_get_cpuid_feature_leaf(unsigned int leaf)` from glibc
/// 2.33+ (<sys/platform/x86.h>): glibc's CPUID table for `leaf` (index 1 = CPUID leaf 7), with
/// the "active" words (usable: CPU and OS support) after the four CPUID words.
@_extern(c, "__x86_get_cpuid_feature_leaf")
private func glibc_x86_get_cpuid_feature_leaf(_ leaf: UInt32) -> UnsafeRawPointer?
