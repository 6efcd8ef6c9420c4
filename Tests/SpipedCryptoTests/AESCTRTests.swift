import SpipedCrypto
import XCTest

/// AES-256-CTR against RFC 3686, NIST SP 800-38A and vectors generated with Python's
/// `cryptography` (awkward lengths, carries across the 64-bit halves, spiped's layout),
/// through every engine, in one call and split at block boundaries.
final class AESCTRTests: XCTestCase {
    /// CTR is its own inverse: check `input` → `output` for `key`/`iv` in one call, in place,
    /// and split into two calls at every block boundary of interest.
    func checkCTR(key keyBytes: [UInt8], iv: [UInt8], input: [UInt8], expected: [UInt8], label: String) throws {
        XCTAssertEqual(input.count, expected.count, label)
        for (name, engine) in AESTestEngines.all {
            let key = try AESTestEngines.key(keyBytes, engine)
            // One call into a separate buffer.
            var output = [UInt8](repeating: 0, count: input.count)
            input.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: iv, input: source, output: $0) }
            }
            XCTAssertEqual(output, expected, "\(name): \(label)")
            // In place.
            var buffer = input
            buffer.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: iv, input: UnsafeRawBufferPointer($0), output: $0) }
            XCTAssertEqual(buffer, expected, "\(name) in place: \(label)")
            // Split at block boundaries: the second call starts at the advanced counter.
            let blockCount = (input.count + 15) / 16
            for splitBlocks in Set([1, 2, 3, 4, 5, 7, 8, 9, blockCount - 1].filter { $0 > 0 && $0 < blockCount }) {
                let split = splitBlocks * 16
                var pieces = [UInt8](repeating: 0, count: input.count)
                input.withUnsafeBytes { source in
                    pieces.withUnsafeMutableBytes { out in
                        key.ctrXor(initialCounterBlock: iv, input: UnsafeRawBufferPointer(rebasing: source[..<split]),
                                   output: UnsafeMutableRawBufferPointer(rebasing: out[..<split]))
                        key.ctrXor(initialCounterBlock: Self.add(iv, UInt64(splitBlocks)),
                                   input: UnsafeRawBufferPointer(rebasing: source[split...]),
                                   output: UnsafeMutableRawBufferPointer(rebasing: out[split...]))
                    }
                }
                XCTAssertEqual(pieces, expected, "\(name) split after \(splitBlocks) blocks: \(label)")
            }
        }
    }

    /// `block + n` as a 128-bit big-endian integer (modulo 2^128); test-side arithmetic.
    static func add(_ block: [UInt8], _ n: UInt64) -> [UInt8] {
        var result = block
        var carry = n
        for index in stride(from: 15, through: 0, by: -1) where carry != 0 {
            let sum = UInt64(result[index]) + (carry & 0xFF)
            result[index] = UInt8(truncatingIfNeeded: sum)
            carry = (carry >> 8) + (sum >> 8)
        }
        return result
    }

    /// Checks every record of a `KEY/IV/PLAINTEXT/CIPHERTEXT` file; DECRYPT records map
    /// CIPHERTEXT to PLAINTEXT. Returns the number of records checked.
    @discardableResult
    func checkFile(_ path: String, sections: Set<String>? = nil) throws -> Int {
        var checked = 0
        for record in try VectorFiles.records(path) where sections?.contains(record.section) ?? true {
            let plaintext = try record.bytes("PLAINTEXT"), ciphertext = try record.bytes("CIPHERTEXT")
            let decrypt = record.section == "DECRYPT"
            try checkCTR(key: try record.bytes("KEY"), iv: try record.bytes("IV"),
                         input: decrypt ? ciphertext : plaintext, expected: decrypt ? plaintext : ciphertext,
                         label: "\(path) [\(record.section)] COUNT \(record.fields["COUNT"] ?? "?")")
            checked += 1
        }
        return checked
    }

    func testRFC3686() throws {
        XCTAssertEqual(try checkFile("AES/aes-256-ctr.txt"), 3)
    }

    func testSP800_38A_F55_F56() throws {
        XCTAssertEqual(try checkFile("AES/SP800-38A-CTR-AES256.txt"), 2)
    }

    func testAwkwardLengths() throws {
        XCTAssertEqual(try checkFile("AES/ctr-generated.txt", sections: ["LENGTHS"]), 28)
    }

    func testCounterCarriesFromLowIntoHighHalf() throws {
        XCTAssertEqual(try checkFile("AES/ctr-generated.txt", sections: ["CARRY"]), 7)
    }

    /// spipedCTRXor(packetNumber:) must equal CTR from be64(packetNumber) || be64(0).
    func testSpipedPacketLayout() throws {
        var checked = 0
        for record in try VectorFiles.records("AES/ctr-generated.txt") where record.section == "SPIPED" {
            let iv = try record.bytes("IV")
            XCTAssertEqual(Array(iv[8...]), [UInt8](repeating: 0, count: 8))
            let packetNumber = iv[..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let plaintext = try record.bytes("PLAINTEXT"), expected = try record.bytes("CIPHERTEXT")
            for (name, engine) in AESTestEngines.all {
                let key = try AESTestEngines.key(try record.bytes("KEY"), engine)
                var output = [UInt8](repeating: 0, count: plaintext.count)
                plaintext.withUnsafeBytes { source in
                    output.withUnsafeMutableBytes {
                        key.spipedCTRXor(packetNumber: packetNumber, input: source.baseAddress!, output: $0.baseAddress!,
                                         count: plaintext.count)
                    }
                }
                XCTAssertEqual(output, expected, "\(name): spiped packet \(packetNumber)")
                // And in place, as the protocol layer uses it.
                var buffer = plaintext
                buffer.withUnsafeMutableBytes {
                    key.spipedCTRXor(packetNumber: packetNumber, input: $0.baseAddress!, output: $0.baseAddress!, count: $0.count)
                }
                XCTAssertEqual(buffer, expected, "\(name) in place: spiped packet \(packetNumber)")
            }
            try checkCTR(key: try record.bytes("KEY"), iv: iv, input: plaintext, expected: expected,
                         label: "spiped layout COUNT \(record.fields["COUNT"] ?? "?")")
            checked += 1
        }
        XCTAssertEqual(checked, 6)
    }

    func testEmptyInputWritesNothing() throws {
        for (name, engine) in AESTestEngines.all {
            let key = try AESTestEngines.key([UInt8](repeating: 7, count: 32), engine)
            var sentinel: [UInt8] = [0xAA, 0xBB]
            sentinel.withUnsafeMutableBytes { out in
                key.ctrXor(initialCounterBlock: [UInt8](repeating: 0, count: 16),
                           input: UnsafeRawBufferPointer(start: nil, count: 0), output: out)
                key.spipedCTRXor(packetNumber: 5, input: out.baseAddress!, output: out.baseAddress!, count: 0)
            }
            XCTAssertEqual(sentinel, [0xAA, 0xBB], name)
        }
    }
}
