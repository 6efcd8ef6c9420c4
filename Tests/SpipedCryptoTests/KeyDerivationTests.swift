import Foundation
import XCTest
import SpipedCrypto

final class KeyDerivationTests: XCTestCase {
    /// RFC 5869 HKDF-SHA256 cases. In the cryptography_vectors file some cases have a blank line
    /// between `L` and `PRK`, which splits them into two parser records; a record without
    /// `COUNT` is joined onto the one before it.
    private func hkdfCases() throws -> [VectorFiles.Record] {
        var cases: [VectorFiles.Record] = []
        for record in try VectorFiles.records("KDF/rfc-5869-HKDF-SHA256.txt") {
            if record.fields["COUNT"] == nil, var last = cases.popLast() {
                last.fields.merge(record.fields) { _, new in new }
                cases.append(last)
            } else {
                cases.append(record)
            }
        }
        return cases
    }

    func testHKDFRFC5869() throws {
        let cases = try hkdfCases()
        XCTAssertEqual(cases.count, 3)
        for (name, backend) in SHA256TestBackends.all {
            for testCase in cases {
                let context = "\(name) COUNT=\(testCase.fields["COUNT"] ?? "?")"
                XCTAssertEqual(testCase.fields["Hash"], "SHA-256")
                let prk = HKDF.extract(salt: try testCase.bytes("salt"), inputKeyMaterial: try testCase.bytes("IKM"), backend: backend)
                XCTAssertEqual(hexString(prk), hexString(try testCase.bytes("PRK")), context)
                let okm = try HKDF.expand(pseudoRandomKey: try testCase.bytes("PRK"), info: try testCase.bytes("info"),
                                          outputByteCount: try testCase.integer("L"), backend: backend)
                XCTAssertEqual(hexString(okm), hexString(try testCase.bytes("OKM")), context)
            }
        }
    }

    func testHKDFOutputLengthLimits() throws {
        let backend = SHA256TestBackends.portable
        let prk = [UInt8](repeating: 7, count: 32)
        for badLength in [-1, 0, 255 * 32 + 1] {
            XCTAssertThrowsError(try HKDF.expand(pseudoRandomKey: prk, info: [], outputByteCount: badLength, backend: backend)) {
                XCTAssertEqual($0 as? CryptoError, .invalidParameter)
            }
        }
        let longest = try HKDF.expand(pseudoRandomKey: prk, info: [1], outputByteCount: 255 * 32, backend: backend)
        XCTAssertEqual(longest.count, 8160)
        // Shorter outputs are prefixes of longer ones (T(1) || T(2) || ... cut to length).
        let short = try HKDF.expand(pseudoRandomKey: prk, info: [1], outputByteCount: 33, backend: backend)
        XCTAssertEqual(short, Array(longest.prefix(33)))
    }

    /// RFC 7914 §11, including the 80000-iteration case.
    func testPBKDF2RFC7914() throws {
        let records = try VectorFiles.records("KDF/rfc-7914-PBKDF2-HMAC-SHA256.txt")
        XCTAssertEqual(records.count, 2)
        for (name, backend) in SHA256TestBackends.all {
            for record in records {
                guard let password = record.fields["PASSWORD"], let salt = record.fields["SALT"] else {
                    return XCTFail("record without PASSWORD/SALT: \(record.fields)")
                }
                let derived = try PBKDF2.sha256(password: Array(password.utf8), salt: Array(salt.utf8),
                                                iterations: try record.integer("ITERATIONS"),
                                                outputByteCount: try record.integer("LENGTH"), backend: backend)
                XCTAssertEqual(hexString(derived), hexString(try record.bytes("DERIVED_KEY")),
                               "\(name) COUNT=\(record.fields["COUNT"] ?? "?")")
            }
        }
    }

    func testPBKDF2ParameterLimits() throws {
        let backend = SHA256TestBackends.portable
        for (iterations, length) in [(0, 32), (-1, 32), (1, 0), (1, -5)] {
            XCTAssertThrowsError(try PBKDF2.sha256(password: [1], salt: [2], iterations: iterations,
                                                   outputByteCount: length, backend: backend)) {
                XCTAssertEqual($0 as? CryptoError, .invalidParameter)
            }
        }
        // Output blocks are independent: a shorter output is a prefix of a longer one.
        let long = try PBKDF2.sha256(password: [1], salt: [2], iterations: 3, outputByteCount: 100, backend: backend)
        let short = try PBKDF2.sha256(password: [1], salt: [2], iterations: 3, outputByteCount: 33, backend: backend)
        XCTAssertEqual(long.count, 100)
        XCTAssertEqual(short, Array(long.prefix(33)))
    }
}
