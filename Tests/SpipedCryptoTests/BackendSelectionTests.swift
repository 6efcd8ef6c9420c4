import Foundation
import SpipedCrypto
import SpipedCryptoAccelerated
import XCTest

/// The one dispatch point: hardware code is chosen exactly when the CPU has the features
/// (read independently from /proc/cpuinfo) and the self-tests pass.
final class BackendSelectionTests: XCTestCase {
    /// CPU flags as the kernel reports them.
    private func cpuFlags() throws -> Set<String> {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
    }

    /// Each engine is usable exactly when the CPU has its features (the self-tests pass on
    /// real hardware); the chosen engine of each primitive is a usable one, and the portable
    /// one is chosen only when it measured fastest (or is the only one).
    func testSelectionFollowsCPUFeaturesAndMeasurement() throws {
        let flags = try cpuFlags()
        let hasAll = flags.contains("aes") && flags.contains("sha_ni") && flags.contains("sse4_1") && flags.contains("ssse3")
            && flags.contains("bmi2")
        XCTAssertEqual(CryptoBackendSelection.hardwareIfAvailable != nil, hasAll)
        let reports = CryptoBackendSelection.reports
        func report(_ primitive: CryptoPrimitive, _ name: String) -> CryptoEngineReport? {
            reports.first { $0.primitive == primitive && $0.name == name }
        }
        XCTAssertEqual(report(.sha256, "sha-ni")?.unusableReason == nil, flags.contains("sha_ni"))
        XCTAssertEqual(report(.aes256, "aes-ni")?.unusableReason == nil, flags.contains("aes") && flags.contains("sse4_1"))
        XCTAssertEqual(report(.diffieHellman, "mulx")?.unusableReason == nil, flags.contains("bmi2"))
        let environment = ProcessInfo.processInfo.environment
        let forced = environment["SPIPED_FORCE_PORTABLE"].map { !$0.isEmpty && $0 != "0" } ?? false
        if forced {
            XCTAssertEqual(CryptoBackendSelection.best.kind, .portable)
            XCTAssertTrue(CryptoBackendSelection.summary.contains("SPIPED_FORCE_PORTABLE"))
            return
        }
        for primitive in CryptoPrimitive.allCases {
            let engines = reports.filter { $0.primitive == primitive }
            let chosen = engines.filter(\.isChosen)
            XCTAssertEqual(chosen.count, 1, "\(primitive): \(engines)")
            guard let winner = chosen.first else { continue }
            XCTAssertNil(winner.unusableReason, "\(primitive): an unusable engine was chosen")
            guard environment["SPIPED_CRYPTO_ENGINE"] == nil else { continue }
            let usable = engines.filter { $0.unusableReason == nil }
            if usable.count > 1 {
                // Every usable engine was measured, and the winner had the highest rate.
                XCTAssertTrue(usable.allSatisfy { $0.measuredRate != nil }, "\(primitive): \(usable)")
                let top = usable.compactMap(\.measuredRate).max() ?? 0
                XCTAssertEqual(winner.measuredRate, top, "\(primitive)")
            }
        }
        XCTAssertEqual(CryptoBackendSelection.best.kind,
                       reports.allSatisfy { !$0.isChosen || $0.name == "portable" } ? .portable : .hardware)
        XCTAssertEqual(CryptoBackendSelection.best.montgomery2048?.name,
                       report(.diffieHellman, "portable")?.isChosen == true ? nil : reports.first { $0.primitive == .diffieHellman && $0.isChosen }?.name)
    }

    /// Every usable engine of every primitive on its own (not only the chosen one) agrees with
    /// the portable code: SHA-256 one and two streams, AES-256-CTR, and a DH shared secret
    /// against the Python-computed vector.
    func testEveryUsableEngineAgreesWithPortable() throws {
        var generator = SystemRandomNumberGenerator()
        let message = (0..<1060).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for variant in CryptoBackendSelection.engineVariants(of: .sha256) {
            XCTAssertEqual(SHA256.hash(message, backend: variant.backend), SHA256.hash(message, backend: .portable), variant.name)
        }
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let portableKey = try AES256Key(key: key, backend: .portable)
        var expected = [UInt8](repeating: 0, count: message.count)
        message.withUnsafeBytes { input in
            expected.withUnsafeMutableBytes { portableKey.spipedCTRXor(packetNumber: 3, input: input.baseAddress!, output: $0.baseAddress!, count: message.count) }
        }
        for variant in CryptoBackendSelection.engineVariants(of: .aes256) {
            let engineKey = try AES256Key(key: key, backend: variant.backend)
            var output = [UInt8](repeating: 0, count: message.count)
            message.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { engineKey.spipedCTRXor(packetNumber: 3, input: input.baseAddress!, output: $0.baseAddress!, count: message.count) }
            }
            XCTAssertEqual(output, expected, variant.name)
        }
        let exponent = DHPrivateExponent(bigEndianBytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let peer = DHPrivateExponent(bigEndianBytes: [0x12, 0x34, 0x56]).publicValue(backend: .portable)
        let reference = try exponent.sharedSecret(peerPublicValue: peer, requireForwardSecrecy: true, backend: .portable)
        for variant in CryptoBackendSelection.engineVariants(of: .diffieHellman) {
            XCTAssertEqual(exponent.publicValue(backend: variant.backend), exponent.publicValue(backend: .portable), variant.name)
            XCTAssertEqual(try exponent.sharedSecret(peerPublicValue: peer, requireForwardSecrecy: true, backend: variant.backend),
                           reference, variant.name)
        }
    }

    /// Whatever was selected computes the same SHA-256 (one hash and two side by side) and
    /// AES-CTR as the portable code.
    func testSelectedBackendAgreesWithPortable() throws {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 55, 64, 1028, 4099] {
            let message = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertEqual(SHA256.hash(message, backend: CryptoBackendSelection.best), SHA256.hash(message, backend: .portable))
            // The two-hash path (the selected two-stream compression) on this message and its reverse.
            let reversed = Array(message.reversed())
            var hashA = SHA256(backend: CryptoBackendSelection.best), hashB = hashA
            var digestA = [UInt8](repeating: 0, count: SHA256.digestByteCount), digestB = digestA
            message.withUnsafeBytes { bytesA in
                reversed.withUnsafeBytes { bytesB in SHA256.update(&hashA, bytesA, &hashB, bytesB) }
            }
            digestA.withUnsafeMutableBytes { outputA in
                digestB.withUnsafeMutableBytes { outputB in SHA256.finalize(&hashA, into: outputA, &hashB, into: outputB) }
            }
            XCTAssertEqual(digestA, SHA256.hash(message, backend: .portable), "length \(length)")
            XCTAssertEqual(digestB, SHA256.hash(reversed, backend: .portable), "length \(length)")
            let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let selected = try AES256Key(key: key, backend: CryptoBackendSelection.best)
            let portable = try AES256Key(key: key, backend: .portable)
            var a = [UInt8](repeating: 0, count: length), b = a
            message.withUnsafeBytes { input in
                a.withUnsafeMutableBytes { selected.spipedCTRXor(packetNumber: 7, input: input.baseAddress!, output: $0.baseAddress!, count: length) }
                b.withUnsafeMutableBytes { portable.spipedCTRXor(packetNumber: 7, input: input.baseAddress!, output: $0.baseAddress!, count: length) }
            }
            XCTAssertEqual(a, b, "length \(length)")
        }
    }
}
