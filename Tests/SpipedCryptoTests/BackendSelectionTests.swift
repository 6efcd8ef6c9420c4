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

    func testSelectionFollowsCPUFeatures() throws {
        let flags = try cpuFlags()
        let hasAll = flags.contains("aes") && flags.contains("sha_ni") && flags.contains("sse4_1") && flags.contains("ssse3")
            && flags.contains("bmi2")
        XCTAssertEqual(CryptoBackendSelection.hardwareIfAvailable != nil, hasAll)
        let forced = ProcessInfo.processInfo.environment["SPIPED_FORCE_PORTABLE"].map { !$0.isEmpty && $0 != "0" } ?? false
        if forced {
            XCTAssertEqual(CryptoBackendSelection.best.kind, .portable)
            XCTAssertTrue(CryptoBackendSelection.summary.contains("SPIPED_FORCE_PORTABLE"))
        } else {
            XCTAssertEqual(CryptoBackendSelection.best.kind,
                           flags.contains("aes") || flags.contains("sha_ni") || flags.contains("bmi2") ? .hardware : .portable)
            XCTAssertEqual(CryptoBackendSelection.summary.contains("AES-NI"), flags.contains("aes"))
            XCTAssertEqual(CryptoBackendSelection.summary.contains("SHA-NI"), flags.contains("sha_ni"))
            // The IFMA engine (issue 15) is preferred over mulx when the CPU has AVX-512 IFMA.
            let ifma = flags.isSuperset(of: ["avx512f", "avx512ifma", "avx512vl"])
            let expectedDH = ifma ? "ifma" : flags.contains("bmi2") ? "mulx" : nil
            XCTAssertTrue(CryptoBackendSelection.summary.contains("DH: \(expectedDH ?? "portable")"))
            XCTAssertEqual(CryptoBackendSelection.best.montgomery2048?.name, expectedDH)
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
