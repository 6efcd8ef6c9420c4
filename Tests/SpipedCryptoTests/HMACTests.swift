import Foundation
import XCTest
import SpipedCrypto

final class HMACTests: XCTestCase {
    /// RFC 4231 HMAC-SHA-256 cases (1-4, 6, 7 from cryptography_vectors, 5 from our transcription).
    /// An `MD` shorter than 32 bytes is a truncated tag and is compared as a prefix.
    private func rfc4231Records() throws -> [VectorFiles.Record] {
        try VectorFiles.records("HMAC/rfc-4231-sha256.txt") + VectorFiles.records("HMAC/rfc-4231-sha256-truncated.txt")
    }

    func testRFC4231OneShot() throws {
        let records = try rfc4231Records()
        XCTAssertEqual(records.count, 7)
        for (name, backend) in SHA256TestBackends.all {
            for (index, record) in records.enumerated() {
                let expected = try record.bytes("MD")
                let tag = HMACSHA256.authenticationCode(key: try record.bytes("Key"), message: try record.bytes("Msg"), backend: backend)
                XCTAssertEqual(tag.count, HMACSHA256.tagByteCount)
                XCTAssertEqual(hexString(Array(tag.prefix(expected.count))), hexString(expected), "\(name) record \(index)")
            }
        }
    }

    /// The keyed state is prepared once and copied per message; messages are fed byte by byte
    /// and split at every offset, through both the array and raw-pointer APIs.
    func testRFC4231KeyedStateCopiedAndStreamed() throws {
        for (name, backend) in SHA256TestBackends.all {
            for (index, record) in try rfc4231Records().enumerated() {
                let expected = try record.bytes("MD")
                let message = try record.bytes("Msg")
                let keyed = try record.bytes("Key").withUnsafeBytes { HMACSHA256(key: $0, backend: backend) }
                func check(_ tag: [UInt8], _ how: String) {
                    XCTAssertEqual(Array(tag.prefix(expected.count)), expected, "\(name) record \(index) \(how)")
                }

                var byteByByte = keyed
                for byte in message { byteByByte.update([byte]) }
                check(byteByByte.finalize(), "byte by byte")

                for split in 0...message.count {
                    var mac = keyed
                    message.withUnsafeBytes { all in
                        mac.update(UnsafeRawBufferPointer(rebasing: all[..<split]))
                        mac.update(UnsafeRawBufferPointer(rebasing: all[split...]))
                    }
                    var tag = [UInt8](repeating: 0, count: HMACSHA256.tagByteCount)
                    tag.withUnsafeMutableBytes { mac.finalize(into: $0) }
                    check(tag, "split at \(split)")
                }
            }
        }
    }

    /// After `wipe()`, nothing of the key is left: two wiped states with different keys give
    /// the same output, which differs from the keyed one.
    func testWipeRemovesKeyDependentState() throws {
        let records = try rfc4231Records()
        for (name, backend) in SHA256TestBackends.all {
            var first = HMACSHA256(key: try records[0].bytes("Key"), backend: backend)
            var second = HMACSHA256(key: try records[1].bytes("Key"), backend: backend)
            var keyedCopy = first
            first.wipe()
            second.wipe()
            first.update([1, 2, 3])
            second.update([1, 2, 3])
            keyedCopy.update([1, 2, 3])
            let firstTag = first.finalize()
            XCTAssertEqual(firstTag, second.finalize(), name)
            XCTAssertNotEqual(firstTag, keyedCopy.finalize(), name)
        }
    }
}
