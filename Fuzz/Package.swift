// swift-tools-version:6.0
// libFuzzer targets for spiped-swift. Kept out of the root package because every target needs
// the fuzzer sanitizer and its own linker settings. Build and run them with `Fuzz/run SECONDS`.
import PackageDescription

/// Every fuzz target is an executable whose `main` hands control to libFuzzer's driver.
/// `-parse-as-library` because the entry point is an `@_cdecl` function, not top-level code;
/// lld because the default gold linker crashes on the sanitizer + debug-info link.
func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + dependencies,
        swiftSettings: [.unsafeFlags(["-parse-as-library"])],
        linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
    )
}

let crypto: Target.Dependency = .product(name: "SpipedCrypto", package: "spiped-swift")
let accelerated: Target.Dependency = .product(name: "SpipedCryptoAccelerated", package: "spiped-swift")
let proto: Target.Dependency = .product(name: "SpipedProtocol", package: "spiped-swift")
let system: Target.Dependency = .product(name: "SpipedSystem", package: "spiped-swift")
let commandLine: Target.Dependency = .product(name: "SpipedCommandLine", package: "spiped-swift")
let proxy: Target.Dependency = .product(name: "SpipedProxy", package: "spiped-swift")

let package = Package(
    name: "spiped-fuzz",
    dependencies: [.package(name: "spiped-swift", path: "..")],
    targets: [
        .target(name: "FuzzSupport"),
        .target(name: "ProtocolFuzzing", dependencies: ["FuzzSupport", crypto, proto]),
        fuzzTarget("diff-sha256", [crypto, accelerated]),
        fuzzTarget("diff-sha256-many", [crypto, accelerated]),
        fuzzTarget("diff-aes-ctr", [crypto, accelerated]),
        fuzzTarget("diff-modexp", [crypto, accelerated]),
        fuzzTarget("diff-montgomery-ifma", [crypto, accelerated]),
        fuzzTarget("handshake-server", ["ProtocolFuzzing"]),
        fuzzTarget("handshake-client", ["ProtocolFuzzing"]),
        fuzzTarget("packet-opener", ["ProtocolFuzzing"]),
        fuzzTarget("address-parse", [system]),
        fuzzTarget("key-file", ["ProtocolFuzzing", proto]),
        fuzzTarget("options-parse", [commandLine, system]),
        fuzzTarget("config-parse", [commandLine, system, proto]),
        fuzzTarget("http-request", [proxy]),
    ],
    swiftLanguageModes: [.v6]
)
