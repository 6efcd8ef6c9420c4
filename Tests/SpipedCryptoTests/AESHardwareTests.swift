import SpipedCrypto
import SpipedCryptoAccelerated
import Foundation
import XCTest

/// The AES-NI and VAES engines: CPU detection, start-up self-test, and identical output to the
/// portable engine on random keys, counters (including ones about to carry) and lengths. The
/// vector-file tests in AESTests and AESCTRTests also run through these engines when the CPU
/// supports them.
final class AESHardwareTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(AES256Hardware.isSupported, "CPU has no AES-NI/SSSE3/SSE4.1")
    }

    func testSelfTestPasses() {
        XCTAssertTrue(AES256Hardware.passesSelfTest())
    }

    func testRandomBlocksMatchPortable() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let portable = try AESTestEngines.key(keyBytes, AES256Portable.engine)
            let hardware = try AESTestEngines.key(keyBytes, AES256Hardware.engine)
            let block = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var fromPortable = [UInt8](repeating: 0, count: 16), fromHardware = [UInt8](repeating: 1, count: 16)
            block.withUnsafeBytes { input in
                fromPortable.withUnsafeMutableBytes { portable.encryptBlock(input.baseAddress!, $0.baseAddress!) }
                fromHardware.withUnsafeMutableBytes { hardware.encryptBlock(input.baseAddress!, $0.baseAddress!) }
            }
            XCTAssertEqual(fromPortable, fromHardware, "key \(keyBytes), block \(block)")
        }
    }

    func testRandomKeystreamsMatchPortable() throws {
        var generator = SystemRandomNumberGenerator()
        let lengths = [1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 1028, 1029, 4096 + 13]
        for round in 0..<60 {
            let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let length = round < lengths.count ? lengths[round] : Int.random(in: 0...3000, using: &generator)
            let input = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Every third counter is a few blocks short of a carry out of the low 64 bits.
            var counter = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if round % 3 == 0 {
                for index in 8..<16 { counter[index] = 0xFF }
                counter[15] = UInt8.random(in: 0xC0...0xFF, using: &generator)
            }
            var outputs: [[UInt8]] = []
            for (_, engine) in [("portable", AES256Portable.engine)] + AESTestEngines.hardware {
                let key = try AESTestEngines.key(keyBytes, engine)
                var output = [UInt8](repeating: 0, count: length)
                input.withUnsafeBytes { source in
                    output.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
                }
                outputs.append(output)
            }
            for output in outputs.dropFirst() {
                XCTAssertEqual(outputs[0], output, "length \(length), counter \(counter)")
            }
        }
    }

    func testRandomSpipedPacketsMatchPortable() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let packetNumber = UInt64.random(in: 0...UInt64.max, using: &generator)
            let packet = (0..<1028).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var outputs: [[UInt8]] = []
            for (_, engine) in [("portable", AES256Portable.engine)] + AESTestEngines.hardware {
                let key = try AESTestEngines.key(keyBytes, engine)
                var buffer = packet
                buffer.withUnsafeMutableBytes {
                    key.spipedCTRXor(packetNumber: packetNumber, input: $0.baseAddress!, output: $0.baseAddress!, count: $0.count)
                }
                outputs.append(buffer)
            }
            for output in outputs.dropFirst() { XCTAssertEqual(outputs[0], output, "packet \(packetNumber)") }
        }
    }

    /// Every length from 0 to 300 bytes and a 1028-byte packet body (sixteen-block passes, two-
    /// block passes and the partial tail of the VAES loop, in every combination), from counters
    /// whose low half wraps at each position in or just past the data, in place and not; every
    /// hardware engine against the portable one.
    func testEveryTailLengthAndWrapPositionMatchesPortable() throws {
        var generator = SystemRandomNumberGenerator()
        let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let portable = try AESTestEngines.key(keyBytes, AES256Portable.engine)
        let engines = try AESTestEngines.hardware.map { ($0.name, try AESTestEngines.key(keyBytes, $0.engine)) }
        let high = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for length in Array(0...300) + [1028] {
            let input = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Blocks before the one whose low half is all ones (the next wraps): at the start,
            // mid-pass, at the edges of a sixteen-block pass, past the end, or random.
            let blocksBeforeWrap = length % 7 == 0 ? Int.random(in: 0...66, using: &generator) : [0, 1, 2, 15, 16, 17, 100][length % 7]
            let counters = [[UInt8](repeating: 0, count: 8) + (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) },
                            high + Self.bigEndianBytes(UInt64.max - UInt64(blocksBeforeWrap))]
            for counter in counters {
                var expected = [UInt8](repeating: 0, count: length)
                input.withUnsafeBytes { source in
                    expected.withUnsafeMutableBytes { portable.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
                }
                for (name, key) in engines {
                    var output = [UInt8](repeating: 0, count: length)
                    input.withUnsafeBytes { source in
                        output.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
                    }
                    XCTAssertEqual(output, expected, "\(name): length \(length), counter \(counter)")
                    var buffer = input
                    buffer.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: counter, input: UnsafeRawBufferPointer($0), output: $0) }
                    XCTAssertEqual(buffer, expected, "\(name) in place: length \(length), counter \(counter)")
                }
            }
        }
    }

    /// The output buffer beyond `count` is never written (the VAES tail goes through a buffer).
    func testWritesNothingPastTheEnd() throws {
        for (name, engine) in AESTestEngines.hardware {
            let key = try AESTestEngines.key([UInt8](repeating: 3, count: 32), engine)
            for length in [1, 4, 17, 31, 33, 255, 257, 1028] {
                let input = [UInt8](repeating: 0x5A, count: length)
                var output = [UInt8](repeating: 0xEE, count: length + 64)
                input.withUnsafeBytes { source in
                    output.withUnsafeMutableBytes { key.spipedCTRXor(packetNumber: 9, input: source.baseAddress!, output: $0.baseAddress!, count: length) }
                }
                XCTAssertEqual(Array(output[length...]), [UInt8](repeating: 0xEE, count: 64), "\(name): length \(length)")
            }
        }
    }

    /// be64(value).
    static func bigEndianBytes(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
    }
}

/// The VAES engine's CPU/OS check and self-test. Its vectors run through `AESTestEngines.all`.
final class AESVectorHardwareTests: XCTestCase {
    /// CPU flags as the kernel reports them (the kernel lists avx2 and vaes only when it also
    /// enabled the YMM state).
    private func cpuFlags() throws -> Set<String> {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
    }

    func testSupportFollowsCPUFlags() throws {
        let flags = try cpuFlags()
        let expected = ["aes", "ssse3", "sse4_1", "avx2", "vaes"].allSatisfy(flags.contains)
        XCTAssertEqual(AES256Hardware.isVectorAESSupported, expected, "flags: aes ssse3 sse4_1 avx2 vaes")
    }

    func testSelectionPrefersVAESWhenSupported() throws {
        try XCTSkipUnless(AES256Hardware.isVectorAESSupported, "CPU or OS lacks VAES/AVX2")
        if ProcessInfo.processInfo.environment["SPIPED_FORCE_PORTABLE"].map({ !$0.isEmpty && $0 != "0" }) ?? false { return }
        XCTAssertTrue(CryptoBackendSelection.summary.contains("AES-NI+VAES"), CryptoBackendSelection.summary)
    }
}
