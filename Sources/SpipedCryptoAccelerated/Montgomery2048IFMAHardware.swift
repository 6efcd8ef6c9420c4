import SpipedCrypto
import SpipedCryptoIFMA
import _Builtin_intrinsics.intel.cpuid

/// The AVX-512 IFMA Montgomery engine for group-14 Diffie-Hellman, behind its CPU and OS checks.
///
/// The arithmetic lives in `Montgomery2048IFMA` (target SpipedCryptoIFMA, the only code built
/// with the AVX-512 flags); this file, built without them, decides whether that code may run.
public enum Montgomery2048IFMAHardware {
    /// True when the CPU has AVX512F, AVX512IFMA and AVX512VL (CPUID leaf 7 EBX bits 16, 21
    /// and 31; the target is compiled with all three) *and* the operating system saves the
    /// opmask and ZMM registers as well as XMM and YMM (XCR0 bits 5, 6, 7 and 1, 2).
    ///
    /// The OS half comes from glibc, as for VAES (`AES256Hardware.isVectorAESSupported`):
    /// `__x86_get_cpuid_feature_leaf` returns glibc's feature table, whose "active" bits for
    /// the AVX-512 features glibc sets at start-up only after XGETBV shows XMM, YMM, opmask,
    /// ZMM0-15 upper halves and ZMM16-31 state all enabled (and OSXSAVE set).
    public static var isSupported: Bool { cpuAndOSSupportIFMA }

    /// CPUID bits for AVX512F, AVX512IFMA, AVX512VL in leaf 7 EBX.
    private static let requiredLeaf7EBX: UInt32 = (1 << 16) | (1 << 21) | (1 << 31)

    /// The checks, run once.
    private static let cpuAndOSSupportIFMA: Bool = {
        var eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
        guard __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0, ecx & (1 << 27) != 0 else { return false }
        guard __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0,
              ebx & requiredLeaf7EBX == requiredLeaf7EBX else { return false }
        // glibc's table for index 1 (CPUID_INDEX_7): cpuid_array[4] then active_array[4]
        // (EAX, EBX, ECX, EDX), so the active EBX is word 5.
        guard let leaf7 = ifmaGlibcCPUIDFeatureLeaf(1) else { return false }
        let activeEBX = leaf7.load(fromByteOffset: 4 * 5, as: UInt32.self)
        return activeEBX & requiredLeaf7EBX == requiredLeaf7EBX
    }()

    /// The engine (requires `isSupported`): the contract's multiply and square, and the whole
    /// exponentiation that keeps its own 52-bit representation.
    public static let engine = Montgomery2048Engine(
        name: "ifma",
        multiply: Montgomery2048IFMA.multiply,
        square: Montgomery2048IFMA.square,
        power: { result, base, exponent in Montgomery2048IFMA.power(result, base: base, exponent: exponent) }
    )
}

/// glibc's `const struct cpuid_feature *__x86_get_cpuid_feature_leaf(unsigned int)` (2.33+).
@_extern(c, "__x86_get_cpuid_feature_leaf")
private func ifmaGlibcCPUIDFeatureLeaf(_ leaf: UInt32) -> UnsafeRawPointer?
