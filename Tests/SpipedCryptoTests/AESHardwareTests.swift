import SpipedCrypto
import SpipedCryptoAccelerated
import XCTest

/// The AES-NI engine: CPU detection, start-up self-test, and identical output to the portable
/// engine on random keys, counters (including ones about to carry) and lengths. The vector-file
/// tests in AESTests and AESCTRTests also run through this engine when the CPU supports it.
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
            for engine in [AES256Portable.engine, AES256Hardware.engine] {
                let key = try AESTestEngines.key(keyBytes, engine)
                var output = [UInt8](repeating: 0, count: length)
                input.withUnsafeBytes { source in
                    output.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
                }
                outputs.append(output)
            }
            XCTAssertEqual(outputs[0], outputs[1], "length \(length), counter \(counter)")
        }
    }

    func testRandomSpipedPacketsMatchPortable() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let packetNumber = UInt64.random(in: 0...UInt64.max, using: &generator)
            let packet = (0..<1028).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var outputs: [[UInt8]] = []
            for engine in [AES256Portable.engine, AES256Hardware.engine] {
                let key = try AESTestEngines.key(keyBytes, engine)
                var buffer = packet
                buffer.withUnsafeMutableBytes {
                    key.spipedCTRXor(packetNumber: packetNumber, input: $0.baseAddress!, output: $0.baseAddress!, count: $0.count)
                }
                outputs.append(buffer)
            }
            XCTAssertEqual(outputs[0], outputs[1], "packet \(packetNumber)")
        }
    }
}
