// swift-tools-version:6.0
// spiped in pure Swift: no package dependencies, no C code.
import PackageDescription

/// Flags that let the accelerated target call AES-NI, SHA-NI and SSE4.1 intrinsics.
/// They live on one target only, so the portable `SpipedCrypto` product stays usable as a
/// versioned dependency (SwiftPM refuses unsafe flags there).
let hardwareFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-maes", "-Xcc", "-msha", "-Xcc", "-mssse3", "-Xcc", "-msse4.1", "-Xcc", "-mpclmul"]),
    // `@_extern(c)` declares glibc's __x86_get_cpuid_feature_leaf (no Swift module has it).
    .enableExperimentalFeature("Extern"),
]

/// Flags for the VAES kernel's own target. With AVX enabled the compiler VEX-encodes every
/// SSE instruction and vectorizes ordinary loops with 256-bit registers, so these flags must not
/// reach code that runs on CPUs without AVX (the AES-NI fallback, the CPU checks): the kernel
/// lives alone in `SpipedCryptoVAES` and runs only after the CPU and OS checks.
let vectorAESFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-maes", "-Xcc", "-mavx2", "-Xcc", "-mvaes"]),
]

/// Flags for the AVX-512 multi-buffer SHA-256 kernel's own target: as for VAES, AVX-512 code
/// generation must not reach anything that runs before the CPU and OS checks.
let avx512SHA256Flags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mavx512f", "-Xcc", "-mavx512bw", "-Xcc", "-mavx512vl"]),
]

let package = Package(
    name: "spiped-swift",
    products: [
        // Portable, constant-time crypto; safe to depend on by version.
        .library(name: "SpipedCrypto", targets: ["SpipedCrypto"]),
        // AES-NI / SHA-NI backends selected at run time (uses unsafe flags: path/branch deps only).
        .library(name: "SpipedCryptoAccelerated", targets: ["SpipedCryptoAccelerated"]),
        // The sans-I/O spiped protocol core.
        .library(name: "SpipedProtocol", targets: ["SpipedProtocol"]),
        // System wrappers, command-line parsing and the proxy, as products only so Fuzz/ can reach them.
        .library(name: "SpipedSystem", targets: ["SpipedSystem"]),
        .library(name: "SpipedCommandLine", targets: ["SpipedCommandLine"]),
        .library(name: "SpipedProxy", targets: ["SpipedProxy"]),
        .executable(name: "spiped", targets: ["spiped"]),
        .executable(name: "spipe", targets: ["spipe"]),
        .executable(name: "spiped-bench", targets: ["spiped-bench"]),
    ],
    targets: [
        .target(name: "SpipedCrypto"),
        .target(name: "SpipedCryptoVAES", swiftSettings: vectorAESFlags),
        .target(name: "SpipedCryptoSHA256AVX512", swiftSettings: avx512SHA256Flags),
        // Only the mulx Montgomery code is built with -mbmi2, so nothing else can pick up BMI2
        // instructions and trap on CPUs without them before the CPUID check.
        .target(name: "SpipedCryptoMulx", dependencies: ["SpipedCrypto"], swiftSettings: [.unsafeFlags(["-Xcc", "-mbmi2"])]),
        // BEGIN IFMA engine (issue 15): only the IFMA Montgomery code is built with AVX-512 flags
        // (the compiler may use AVX-512 anywhere in that target); it runs after the CPUID and OS checks.
        .target(name: "SpipedCryptoIFMA", dependencies: ["SpipedCrypto"],
                swiftSettings: [.unsafeFlags(["-Xcc", "-mavx512f", "-Xcc", "-mavx512ifma", "-Xcc", "-mavx512vl"])]),
        // END IFMA engine
        .target(name: "SpipedCryptoAccelerated", dependencies: ["SpipedCrypto", "SpipedCryptoVAES", "SpipedCryptoMulx", "SpipedCryptoSHA256AVX512", "SpipedCryptoIFMA"], swiftSettings: hardwareFlags),
        .target(name: "SpipedProtocol", dependencies: ["SpipedCrypto"]),
        // `@_extern(c)` declares epoll/eventfd/signalfd, whose headers Swift's Glibc module lacks.
        .target(name: "SpipedSystem", swiftSettings: [.enableExperimentalFeature("Extern")]),
        .target(name: "SpipedProxy", dependencies: ["SpipedProtocol", "SpipedSystem", "SpipedCrypto"]),
        .target(name: "SpipedCommandLine", dependencies: ["SpipedProxy", "SpipedSystem", "SpipedProtocol", "SpipedCrypto"]),
        .executableTarget(name: "spiped", dependencies: ["SpipedCommandLine", "SpipedProxy", "SpipedCryptoAccelerated"]),
        .executableTarget(name: "spipe", dependencies: ["SpipedCommandLine", "SpipedProxy", "SpipedCryptoAccelerated"]),
        .executableTarget(name: "spiped-bench", dependencies: ["SpipedProtocol", "SpipedCryptoAccelerated"]),
        .testTarget(name: "SpipedCryptoTests", dependencies: ["SpipedCrypto", "SpipedCryptoAccelerated"]),
        .testTarget(name: "SpipedProtocolTests", dependencies: ["SpipedProtocol", "SpipedCryptoAccelerated"]),
        .testTarget(name: "SpipedProxyTests", dependencies: ["SpipedProxy", "SpipedSystem", "SpipedProtocol", "SpipedCrypto", "SpipedCryptoAccelerated"]),
        .testTarget(name: "SpipedCommandLineTests", dependencies: ["SpipedCommandLine", "SpipedSystem"]),
    ],
    swiftLanguageModes: [.v6]
)
