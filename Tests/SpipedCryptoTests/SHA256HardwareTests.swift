import Foundation
import XCTest
import SpipedCrypto
import SpipedCryptoAccelerated

/// SplitMix64: a small deterministic generator so a failure can be replayed from its seed.
struct SHA256TestRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &self) }
    }
}

final class SHA256HardwareTests: XCTestCase {
    /// `SHA256Hardware.isSupported` agrees with the kernel's view of the CPU (`sha_ni`, `ssse3`,
    /// `sse4_1` in /proc/cpuinfo).
    func testSupportMatchesProcCPUInfo() throws {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("/proc/cpuinfo not readable")
        }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        let expected = flags.contains("sha_ni") && flags.contains("ssse3") && flags.contains("sse4_1")
        XCTAssertEqual(SHA256Hardware.isSupported, expected)
    }

    /// The SHA-NI and portable compression functions agree on random states, random blocks and
    /// block counts 0...9, and the full hash agrees on random messages of many lengths.
    func testHardwareMatchesPortableOnRandomInput() throws {
        guard SHA256Hardware.isSupported, let hardware = SHA256TestBackends.hardware else {
            throw XCTSkip("CPU has no SHA-NI")
        }
        let seed: UInt64 = 0x5348_4132_3536   // fixed so failures reproduce
        var random = SHA256TestRandom(state: seed)

        for trial in 0..<200 {
            let blockCount = trial % 10
            let blocks = random.bytes(64 * blockCount)
            let initialState = (0..<8).map { _ in UInt32.random(in: .min ... .max, using: &random) }
            var portableState = initialState
            var hardwareState = initialState
            blocks.withUnsafeBytes { raw in
                let base = raw.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!   // unused when blockCount == 0
                portableState.withUnsafeMutableBufferPointer { SHA256Portable.compress($0.baseAddress!, base, blockCount) }
                hardwareState.withUnsafeMutableBufferPointer { SHA256Hardware.compress($0.baseAddress!, base, blockCount) }
            }
            XCTAssertEqual(portableState, hardwareState, "seed \(seed) trial \(trial) blocks \(blockCount)")
        }

        // Unaligned block pointers: compress from every offset 0...15 into a buffer.
        let buffer = random.bytes(64 * 3 + 16)
        for offset in 0..<16 {
            var portableState = [UInt32](repeating: 0x0123_4567, count: 8)
            var hardwareState = portableState
            buffer.withUnsafeBytes { raw in
                portableState.withUnsafeMutableBufferPointer { SHA256Portable.compress($0.baseAddress!, raw.baseAddress! + offset, 3) }
                hardwareState.withUnsafeMutableBufferPointer { SHA256Hardware.compress($0.baseAddress!, raw.baseAddress! + offset, 3) }
            }
            XCTAssertEqual(portableState, hardwareState, "offset \(offset)")
        }

        let lengths = Array(0...300) + [511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 65_537]
        for length in lengths {
            let message = random.bytes(length)
            XCTAssertEqual(SHA256.hash(message, backend: SHA256TestBackends.portable),
                           SHA256.hash(message, backend: hardware), "seed \(seed) length \(length)")
        }
    }

    /// The two-stream compression (SHA-NI's interleaved one and the portable backend's) equals
    /// two portable `compress` calls, on random states and blocks, block counts 0...9, unaligned
    /// block pointers, and both streams reading the same blocks.
    func testTwoStreamCompressMatchesTwoPortableCompressions() throws {
        var candidates: [(String, CryptoBackend.SHA256Compress2Function)] =
            [("portable backend", try XCTUnwrap(CryptoBackend.portable.sha256Compress2))]
        if SHA256Hardware.isSupported { candidates.append(("SHA-NI", { SHA256Hardware.compress2($0, $1, $2, $3, $4) })) }
        let seed: UInt64 = 0x3257_4159   // fixed so failures reproduce
        var random = SHA256TestRandom(state: seed)

        for (name, compress2) in candidates {
            for trial in 0..<200 {
                let blockCount = trial % 10
                let blocksA = random.bytes(64 * blockCount + 16), blocksB = random.bytes(64 * blockCount + 16)
                let offsetA = trial % 16, offsetB = (trial / 16) % 16
                let shareBlocks = trial % 7 == 0
                let initialA = (0..<8).map { _ in UInt32.random(in: .min ... .max, using: &random) }
                let initialB = (0..<8).map { _ in UInt32.random(in: .min ... .max, using: &random) }
                var expectedA = initialA, expectedB = initialB
                var stateA = initialA, stateB = initialB
                blocksA.withUnsafeBytes { rawA in
                    blocksB.withUnsafeBytes { rawB in
                        let inputA = rawA.baseAddress! + offsetA
                        let inputB = shareBlocks ? inputA : rawB.baseAddress! + offsetB
                        expectedA.withUnsafeMutableBufferPointer { SHA256Portable.compress($0.baseAddress!, inputA, blockCount) }
                        expectedB.withUnsafeMutableBufferPointer { SHA256Portable.compress($0.baseAddress!, inputB, blockCount) }
                        stateA.withUnsafeMutableBufferPointer { a in
                            stateB.withUnsafeMutableBufferPointer { b in
                                compress2(a.baseAddress!, inputA, b.baseAddress!, inputB, blockCount)
                            }
                        }
                    }
                }
                let context = "\(name) seed \(seed) trial \(trial) blocks \(blockCount) shared \(shareBlocks)"
                XCTAssertEqual(stateA, expectedA, context)
                XCTAssertEqual(stateB, expectedB, context)
            }
        }
    }
}
