import SpipedCrypto
import SpipedCryptoSHA256AVX512
import _Builtin_intrinsics.intel.cpuid

/// One multi-stream SHA-256 compression (see `CryptoBackend.SHA256CompressManyFunction`): its
/// width, whether this CPU runs it, and its function.
public struct SHA256MultiStreamEngine: Sendable {
    /// Short name for reports, e.g. "SHA-NI x4".
    public let name: String
    /// Streams per call at most (`CryptoBackend.sha256Lanes`).
    public let lanes: Int
    /// True when the CPU (and, for AVX-512, the OS) supports the instructions it uses; calling
    /// `compress` otherwise traps.
    public let isSupported: Bool
    /// The multi-stream compression function.
    public let compress: CryptoBackend.SHA256CompressManyFunction
}

/// The multi-stream SHA-256 engines, each with its CPU check and self-test; the backend
/// selection plugs the verified ones in (`CryptoBackendSelection`).
public enum SHA256MultiStream {
    /// Four SHA-NI streams interleaved (`SHA256Hardware.compress4`); needs SHA-NI, SSSE3, SSE4.1.
    public static let shaNIFourStreams = SHA256MultiStreamEngine(
        name: "SHA-NI x4", lanes: 4, isSupported: SHA256Hardware.isSupported,
        compress: { SHA256Hardware.compress4($0, $1, $2, $3) })

    /// Sixteen messages in the lanes of AVX-512 registers (`SHA256AVX512MultiBuffer`); needs
    /// AVX-512 F, BW and VL, AVX2, and an OS that saves the ZMM state.
    public static let avx512SixteenLanes = SHA256MultiStreamEngine(
        name: "AVX-512 x16", lanes: SHA256AVX512MultiBuffer.laneCount, isSupported: isAVX512Supported,
        compress: { SHA256AVX512MultiBuffer.compress($0, $1, $2, $3) })

    /// Every engine, supported or not.
    public static let all: [SHA256MultiStreamEngine] = [shaNIFourStreams, avx512SixteenLanes]

    /// True when the CPU reports AVX2 (CPUID leaf 7 EBX bit 5), AVX-512 F (bit 16), BW (bit 30)
    /// and VL (bit 31), and glibc reports them active, i.e. the OS saves the YMM, ZMM and
    /// opmask state (XCR0), as for VAES in `AES256Hardware`.
    public static var isAVX512Supported: Bool { avx512Usable }

    private static let avx512Usable: Bool = {
        let wanted: UInt32 = 1 << 5 | 1 << 16 | 1 << 30 | 1 << 31
        var eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
        guard __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0, ebx & wanted == wanted else { return false }
        // glibc's table for index 1 (CPUID leaf 7): four CPUID words, then the four "active" words.
        guard let leaf7 = sha256GlibcCPUIDFeatureLeaf(1) else { return false }
        return leaf7.load(fromByteOffset: 4 * 5, as: UInt32.self) & wanted == wanted
    }()

    /// True when `engine` is supported and passes its known-answer self-test (see
    /// `SelfTest.sha256Many`). Tests and the start-up measurement use it.
    public static func passesSelfTest(_ engine: SHA256MultiStreamEngine) -> Bool {
        engine.isSupported && SelfTest.sha256Many(engine)
    }
}

extension SelfTest {
    /// A multi-stream engine against known answers and the portable code: every lane
    /// compresses the padded FIPS 180-4 "abc" block from H(0) (so each lane must give
    /// SHA-256("abc")), then for every stream count 1...lanes, pseudo-random states and 3-block
    /// messages, different per stream, must match portable one-stream compression; finally the
    /// batch HMAC of 1036-byte messages (a packet's MAC input) through a backend using it must
    /// match one-at-a-time portable HMAC for 1...lanes + 3 messages.
    static func sha256Many(_ engine: SHA256MultiStreamEngine) -> Bool {
        let lanes = engine.lanes
        let initial: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        let abcDigest = hexBytes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var abcBlock = [UInt8](repeating: 0, count: 64)
        abcBlock[0] = 0x61; abcBlock[1] = 0x62; abcBlock[2] = 0x63; abcBlock[3] = 0x80; abcBlock[63] = 24
        let random = pseudoRandomBytes(lanes * (3 * 64 + 32))
        let states = UnsafeMutablePointer<UInt32>.allocate(capacity: 16 * lanes)
        let statePointers = UnsafeMutablePointer<UnsafeMutablePointer<UInt32>>.allocate(capacity: lanes)
        let blockPointers = UnsafeMutablePointer<UnsafeRawPointer>.allocate(capacity: lanes)
        defer { states.deallocate(); statePointers.deallocate(); blockPointers.deallocate() }
        let expected = states + 8 * lanes

        let abcPassed = abcBlock.withUnsafeBytes { block -> Bool in
            for lane in 0..<lanes {
                (states + 8 * lane).update(from: initial, count: 8)
                statePointers[lane] = states + 8 * lane
                blockPointers[lane] = block.baseAddress!
            }
            engine.compress(statePointers, blockPointers, lanes, 1)
            for lane in 0..<lanes {
                for word in 0..<8 {
                    let digestWord = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(abcDigest[4 * word + $1]) }
                    if states[8 * lane + word] != digestWord { return false }
                }
            }
            return true
        }
        guard abcPassed else { return false }

        let randomPassed = random.withUnsafeBytes { bytes -> Bool in
            let base = bytes.baseAddress!
            for streamCount in 1...lanes {
                for stream in 0..<streamCount {
                    let record = base + stream * (3 * 64 + 32)
                    for word in 0..<8 {
                        let value = record.loadUnaligned(fromByteOffset: 3 * 64 + 4 * word, as: UInt32.self) &+ UInt32(streamCount)
                        states[8 * stream + word] = value
                        expected[8 * stream + word] = value
                    }
                    statePointers[stream] = states + 8 * stream
                    blockPointers[stream] = record
                    SHA256Portable.compress(expected + 8 * stream, record, 3)
                }
                engine.compress(statePointers, blockPointers, streamCount, 3)
                for index in 0..<(8 * streamCount) where states[index] != expected[index] { return false }
            }
            return true
        }
        guard randomPassed else { return false }

        let candidate = CryptoBackend(kind: .hardware, sha256Compress: CryptoBackend.portable.sha256Compress,
                                      sha256Compress2: CryptoBackend.portable.sha256Compress2,
                                      sha256CompressMany: engine.compress, sha256Lanes: lanes,
                                      aes256: CryptoBackend.portable.aes256)
        let key = pseudoRandomBytes(32)
        let messageByteCount = 1036
        let messages = pseudoRandomBytes((lanes + 3) * messageByteCount)
        let keyed = HMACSHA256(key: key, backend: candidate)
        let references = (0..<(lanes + 3)).map { index in
            HMACSHA256.authenticationCode(key: key, message: Array(messages[(index * messageByteCount)..<((index + 1) * messageByteCount)]),
                                          backend: .portable)
        }
        return messages.withUnsafeBytes { bytes -> Bool in
            for count in 1...(lanes + 3) {
                var tags = [UInt8](repeating: 0, count: count * HMACSHA256.tagByteCount)
                tags.withUnsafeMutableBytes { tagBytes in
                    let messagePointers = (0..<count).map { bytes.baseAddress! + $0 * messageByteCount }
                    let tagPointers = (0..<count).map { tagBytes.baseAddress! + $0 * HMACSHA256.tagByteCount }
                    messagePointers.withUnsafeBufferPointer { messageList in
                        tagPointers.withUnsafeBufferPointer { tagList in
                            keyed.authenticationCodes(messageList, byteCount: messageByteCount, tags: tagList)
                        }
                    }
                }
                for index in 0..<count where Array(tags[(index * 32)..<((index + 1) * 32)]) != references[index] { return false }
            }
            return true
        }
    }
}

/// glibc 2.33+ `__x86_get_cpuid_feature_leaf` (see `AES256Hardware`): CPUID words, then the
/// "active" words (usable: CPU and OS support) for `leaf` (index 1 = CPUID leaf 7).
@_extern(c, "__x86_get_cpuid_feature_leaf")
private func sha256GlibcCPUIDFeatureLeaf(_ leaf: UInt32) -> UnsafeRawPointer?
