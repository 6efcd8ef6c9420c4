import SpipedCrypto
import SpipedCryptoAccelerated
import XCTest

/// The AES engines this machine can run: the portable one always, AES-NI when the CPU has it,
/// and the VAES engine (256-bit CTR) when the CPU and OS support it.
enum AESTestEngines {
    /// (name for failure messages, engine).
    static var all: [(name: String, engine: AES256Engine)] {
        var engines: [(name: String, engine: AES256Engine)] = [("portable", AES256Portable.engine)]
        if AES256Hardware.isSupported { engines.append(("hardware", AES256Hardware.engine)) }
        if AES256Hardware.isVectorAESSupported { engines.append(("vaes", AES256Hardware.vectorEngine)) }
        return engines
    }

    /// The hardware engines (AES-NI, and VAES when supported), for comparisons with portable.
    static var hardware: [(name: String, engine: AES256Engine)] {
        all.filter { $0.name != "portable" }
    }

    /// A backend carrying `engine` (its SHA-256 slot is never called by these tests).
    static func backend(_ engine: AES256Engine, kind: CryptoBackend.Kind = .portable) -> CryptoBackend {
        CryptoBackend(kind: kind, sha256Compress: { _, _, _ in fatalError("SHA-256 is not used by the AES tests") },
                      aes256: engine)
    }

    /// An expanded key for `engine`.
    static func key(_ key: [UInt8], _ engine: AES256Engine) throws -> AES256Key {
        try AES256Key(key: key, backend: backend(engine))
    }
}

/// AES-256 block encryption against the NIST CAVP ECB known-answer files.
final class AESTests: XCTestCase {
    /// The five AESAVS files; each record is checked in the encrypt direction (DECRYPT records
    /// are checked by encrypting their PLAINTEXT and comparing with their CIPHERTEXT).
    static let ecbFiles = ["ECBGFSbox256.rsp", "ECBKeySbox256.rsp", "ECBVarKey256.rsp",
                           "ECBVarTxt256.rsp", "ECBMMT256.rsp"]

    func testECBKnownAnswerFilesThroughEveryEngine() throws {
        for (name, engine) in AESTestEngines.all {
            var checked = 0
            for file in Self.ecbFiles {
                let records = try VectorFiles.records("AES/\(file)")
                XCTAssertFalse(records.isEmpty, "no records in \(file)")
                for record in records {
                    let key = try AESTestEngines.key(try record.bytes("KEY"), engine)
                    let plaintext = try record.bytes("PLAINTEXT")
                    let expected = try record.bytes("CIPHERTEXT")
                    XCTAssertEqual(plaintext.count % 16, 0)
                    XCTAssertEqual(plaintext.count, expected.count)
                    // ECB: every 16-byte block independently (MMT records have several).
                    var output = [UInt8](repeating: 0, count: plaintext.count)
                    plaintext.withUnsafeBytes { input in
                        output.withUnsafeMutableBytes { out in
                            for offset in stride(from: 0, to: plaintext.count, by: 16) {
                                key.encryptBlock(input.baseAddress! + offset, out.baseAddress! + offset)
                            }
                        }
                    }
                    XCTAssertEqual(output, expected, "\(name) engine, \(file) [\(record.section)] COUNT \(record.fields["COUNT"] ?? "?")")
                    checked += 1
                }
            }
            // 10 + 32 + 512 + 256 + 20 records across both sections of the five files.
            XCTAssertEqual(checked, 830, "\(name) engine checked an unexpected number of records")
        }
    }

    func testEncryptBlockInPlace() throws {
        let record = try XCTUnwrap(try VectorFiles.records("AES/ECBVarKey256.rsp").first)
        for (name, engine) in AESTestEngines.all {
            let key = try AESTestEngines.key(try record.bytes("KEY"), engine)
            var block = try record.bytes("PLAINTEXT")
            block.withUnsafeMutableBytes { key.encryptBlock($0.baseAddress!, $0.baseAddress!) }
            XCTAssertEqual(block, try record.bytes("CIPHERTEXT"), name)
        }
    }

    func testKeyLengthIsChecked() {
        let backend = AESTestEngines.backend(AES256Portable.engine)
        for length in [0, 16, 24, 31, 33, 64] {
            XCTAssertThrowsError(try AES256Key(key: [UInt8](repeating: 0, count: length), backend: backend)) { error in
                XCTAssertEqual(error as? CryptoError, .invalidKeyLength(expected: 32, actual: length))
            }
            let bytes = [UInt8](repeating: 0, count: length)
            let threw = bytes.withUnsafeBytes { buffer -> Bool in
                do { _ = try AES256Key(key: buffer, backend: backend); return false } catch { return true }
            }
            XCTAssertTrue(threw, "raw-buffer key of \(length) bytes was accepted")
        }
    }

    func testRawBufferAndArrayInitializersAgree() throws {
        let record = try XCTUnwrap(try VectorFiles.records("AES/ECBKeySbox256.rsp").first)
        let keyBytes = try record.bytes("KEY")
        for (name, engine) in AESTestEngines.all {
            let backend = AESTestEngines.backend(engine)
            let key = try keyBytes.withUnsafeBytes { buffer in try AES256Key(key: buffer, backend: backend) }
            var block = try record.bytes("PLAINTEXT")
            block.withUnsafeMutableBytes { key.encryptBlock($0.baseAddress!, $0.baseAddress!) }
            XCTAssertEqual(block, try record.bytes("CIPHERTEXT"), name)
        }
    }
}
