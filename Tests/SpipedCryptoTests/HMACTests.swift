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

    /// Two RFC 4231 cases at once (`HMACSHA256.update`/`finalize` for two states), for every
    /// ordered pair of cases including a case with itself: different keys and lengths, and equal
    /// lengths (cases 3 and 4: 50 bytes each), split at every offset (split 0 is one shot). Cases
    /// sharing a key (6 and 7, and each case with itself) also go through `authenticationCodes`.
    func testRFC4231TwoMessagesAtOnce() throws {
        let records = try rfc4231Records()
        let cases = try records.map { (key: try $0.bytes("Key"), message: try $0.bytes("Msg"), tag: try $0.bytes("MD")) }
        for (name, backend) in SHA256TestBackends.all {
            for (indexA, caseA) in cases.enumerated() {
                for (indexB, caseB) in cases.enumerated() {
                    let keyedA = HMACSHA256(key: caseA.key, backend: backend)
                    let keyedB = HMACSHA256(key: caseB.key, backend: backend)
                    func check(_ tagA: [UInt8], _ tagB: [UInt8], _ how: String) {
                        let context = "\(name) cases \(indexA) and \(indexB) \(how)"
                        XCTAssertEqual(hexString(Array(tagA.prefix(caseA.tag.count))), hexString(caseA.tag), context)
                        XCTAssertEqual(hexString(Array(tagB.prefix(caseB.tag.count))), hexString(caseB.tag), context)
                    }
                    for split in 0...max(caseA.message.count, caseB.message.count) {
                        var macA = keyedA, macB = keyedB
                        var tagA = [UInt8](repeating: 0, count: HMACSHA256.tagByteCount), tagB = tagA
                        caseA.message.withUnsafeBytes { allA in
                            caseB.message.withUnsafeBytes { allB in
                                let splitA = min(split, allA.count), splitB = min(split, allB.count)
                                HMACSHA256.update(&macA, UnsafeRawBufferPointer(rebasing: allA[..<splitA]),
                                                  &macB, UnsafeRawBufferPointer(rebasing: allB[..<splitB]))
                                HMACSHA256.update(&macA, UnsafeRawBufferPointer(rebasing: allA[splitA...]),
                                                  &macB, UnsafeRawBufferPointer(rebasing: allB[splitB...]))
                            }
                        }
                        tagA.withUnsafeMutableBytes { outputA in
                            tagB.withUnsafeMutableBytes { outputB in HMACSHA256.finalize(&macA, into: outputA, &macB, into: outputB) }
                        }
                        check(tagA, tagB, "split at \(split)")
                    }
                    if caseA.key == caseB.key {
                        var tagA = [UInt8](repeating: 0, count: HMACSHA256.tagByteCount), tagB = tagA
                        caseA.message.withUnsafeBytes { messageA in
                            caseB.message.withUnsafeBytes { messageB in
                                tagA.withUnsafeMutableBytes { outputA in
                                    tagB.withUnsafeMutableBytes { outputB in
                                        keyedA.authenticationCodes(messageA, messageB, tagA: outputA, tagB: outputB)
                                    }
                                }
                            }
                        }
                        check(tagA, tagB, "from one keyed state")
                    }
                }
            }
        }
        XCTAssertEqual(cases[2].message.count, cases[3].message.count, "an equal-length pair is among the cases")
        XCTAssertEqual(cases[4].key, cases[5].key, "a pair of cases (6 and 7) shares a key")
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
