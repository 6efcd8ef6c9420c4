import SpipedCrypto
import SpipedCryptoMulx
import _Builtin_intrinsics.intel.cpuid

/// The BMI2 (`mulx`) Montgomery engine for group-14 Diffie-Hellman, behind its CPU check.
///
/// The arithmetic lives in `Montgomery2048Mulx` (target SpipedCryptoMulx, the only code built
/// with `-mbmi2`); this file, built without it, decides whether that code may run.
public enum Montgomery2048Hardware {
    /// True when the CPU has BMI2 (CPUID leaf 7 EBX bit 8), which `mulx` needs. Running the
    /// engine on a CPU without it traps.
    public static var isSupported: Bool { cpuHasBMI2 }

    /// CPUID, read once.
    private static let cpuHasBMI2: Bool = {
        var eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
        // __get_cpuid_count returns 0 when leaf 7 is above the CPU's maximum.
        guard __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 else { return false }
        return ebx & (1 << 8) != 0
    }()

    /// The engine (requires `isSupported`).
    public static let engine = Montgomery2048Engine(
        name: "mulx",
        multiply: Montgomery2048Mulx.multiply,
        square: Montgomery2048Mulx.square
    )
}
