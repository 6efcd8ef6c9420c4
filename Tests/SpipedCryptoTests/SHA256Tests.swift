import Foundation
import XCTest
import SpipedCrypto
import SpipedCryptoAccelerated

/// The backends the SHA-256 family is tested through: portable always, SHA-NI when the CPU has
/// it. Built directly (not through `CryptoBackend.portable` / `CryptoBackendSelection`) so these
/// tests exercise exactly the compression function named.
enum SHA256TestBackends {
    /// An AES engine that must never be called: the SHA-256 family does not use AES.
    static let unusedAES = AES256Engine(
        scheduleByteCount: 0,
        expandKey: { _, _ in fatalError("AES is not part of the SHA-256 tests") },
        encryptBlock: { _, _, _ in fatalError("AES is not part of the SHA-256 tests") },
        ctrXor: { _, _, _, _, _, _ in fatalError("AES is not part of the SHA-256 tests") }
    )

    /// The portable compression function.
    static let portable = CryptoBackend(
        kind: .portable,
        sha256Compress: { SHA256Portable.compress($0, $1, $2) },
        sha256Compress2: { SHA256Portable.compress2($0, $1, $2, $3, $4) },
        aes256: unusedAES
    )

    /// The portable compression function alone: two-stream work falls back to one call per
    /// stream (`CryptoBackend.sha256Compress2` is nil).
    static let portableOneStream = CryptoBackend(
        kind: .portable,
        sha256Compress: { SHA256Portable.compress($0, $1, $2) },
        aes256: unusedAES
    )

    /// The SHA-NI compression function, when the CPU supports it.
    static let hardware: CryptoBackend? = SHA256Hardware.isSupported
        ? CryptoBackend(kind: .hardware, sha256Compress: { SHA256Hardware.compress($0, $1, $2) },
                        sha256Compress2: { SHA256Hardware.compress2($0, $1, $2, $3, $4) }, aes256: unusedAES)
        : nil

    /// Every backend this machine can run, with a name for failure messages.
    static var all: [(name: String, backend: CryptoBackend)] {
        var result: [(name: String, backend: CryptoBackend)] = [("portable", portable),
                                                                 ("portable one-stream", portableOneStream)]
        if let hardware { result.append(("hardware", hardware)) }
        return result
    }
}

/// Lower-case hex, for readable failure messages.
func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

final class SHA256Tests: XCTestCase {
    /// SHA-256 of `message` fed in pieces of the given sizes (cycled), through the raw-pointer API.
    private func streamedHash(_ message: [UInt8], chunkSizes: [Int], backend: CryptoBackend) -> [UInt8] {
        var hash = SHA256(backend: backend)
        message.withUnsafeBytes { all in
            var offset = 0
            var chunk = 0
            while offset < all.count {
                let size = min(chunkSizes[chunk % chunkSizes.count], all.count - offset)
                hash.update(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + size)]))
                hash.update(UnsafeRawBufferPointer(start: nil, count: 0))   // empty updates change nothing
                offset += size
                chunk += 1
            }
        }
        var digest = [UInt8](repeating: 0, count: SHA256.digestByteCount)
        digest.withUnsafeMutableBytes { hash.finalize(into: $0) }
        return digest
    }

    /// SHA-256 of `message` split into two updates at `split`.
    private func splitHash(_ message: [UInt8], at split: Int, backend: CryptoBackend) -> [UInt8] {
        var hash = SHA256(backend: backend)
        hash.update(Array(message[..<split]))
        hash.update(Array(message[split...]))
        return hash.finalize()
    }

    /// The message of a CAVP ShortMsg/LongMsg record: `Len` bits of `Msg` (`Len = 0` has `Msg = 00`).
    private func cavpMessage(_ record: VectorFiles.Record) throws -> [UInt8] {
        let bitLength = try record.integer("Len")
        XCTAssertEqual(bitLength % 8, 0, "byte-oriented vectors only")
        return Array(try record.bytes("Msg").prefix(bitLength / 8))
    }

    func testShortMessagesOneShotStreamedAndSplitEverywhere() throws {
        let records = try VectorFiles.records("SHA2/SHA256ShortMsg.rsp")
        XCTAssertEqual(records.count, 65)
        for (name, backend) in SHA256TestBackends.all {
            for record in records {
                let message = try cavpMessage(record)
                let expected = try record.bytes("MD")
                let context = "\(name) Len=\(message.count * 8)"
                XCTAssertEqual(hexString(SHA256.hash(message, backend: backend)), hexString(expected), context)
                XCTAssertEqual(streamedHash(message, chunkSizes: [1], backend: backend), expected, "\(context) byte by byte")
                for split in 0...message.count {
                    XCTAssertEqual(splitHash(message, at: split, backend: backend), expected, "\(context) split at \(split)")
                }
            }
        }
    }

    func testLongMessagesOneShotStreamedAndSplit() throws {
        let records = try VectorFiles.records("SHA2/SHA256LongMsg.rsp")
        XCTAssertEqual(records.count, 64)
        for (name, backend) in SHA256TestBackends.all {
            for record in records {
                let message = try cavpMessage(record)
                let expected = try record.bytes("MD")
                let context = "\(name) Len=\(message.count * 8)"
                XCTAssertEqual(hexString(SHA256.hash(message, backend: backend)), hexString(expected), context)
                for chunkSizes in [[1], [63], [64], [65], [1, 64, 2, 127, 55], [500]] {
                    XCTAssertEqual(streamedHash(message, chunkSizes: chunkSizes, backend: backend), expected,
                                   "\(context) chunks \(chunkSizes)")
                }
                for split in [1, 55, 56, 63, 64, 65, 128, message.count / 2, message.count - 1] {
                    XCTAssertEqual(splitHash(message, at: split, backend: backend), expected, "\(context) split at \(split)")
                }
            }
        }
    }

    /// SHAVS Monte Carlo (SHAVS §6.4): from the seed, each checkpoint j runs
    /// MD0 = MD1 = MD2 = seed; MD_i = SHA(MD_{i-3} || MD_{i-2} || MD_{i-1}) for i = 3...1002;
    /// checkpoint j is MD_1002, which is also the next seed.
    func testMonteCarlo() throws {
        let records = try VectorFiles.records("SHA2/SHA256Monte.rsp")
        guard let seedRecord = records.first(where: { $0.fields["Seed"] != nil }) else {
            return XCTFail("no Seed in SHA256Monte.rsp")
        }
        let checkpoints = records.filter { $0.fields["COUNT"] != nil }
        XCTAssertEqual(checkpoints.count, 100)
        for (name, backend) in SHA256TestBackends.all {
            var seed = try seedRecord.bytes("Seed")
            for checkpoint in checkpoints {
                var window = [seed, seed, seed]
                for _ in 3..<1003 {
                    var hash = SHA256(backend: backend)
                    for digest in window { hash.update(digest) }
                    window = [window[1], window[2], hash.finalize()]
                }
                seed = window[2]
                XCTAssertEqual(hexString(seed), hexString(try checkpoint.bytes("MD")),
                               "\(name) COUNT=\(checkpoint.fields["COUNT"] ?? "?")")
            }
        }
    }

    /// FIPS 180-2 Appendix B, including one million 'a', one shot and in uneven pieces.
    func testFIPSExamplesIncludingOneMillionA() throws {
        let records = try VectorFiles.records("SHA2/fips-180-2-examples.txt")
        XCTAssertEqual(records.count, 3)
        for (name, backend) in SHA256TestBackends.all {
            for record in records {
                let unit = try record.bytes("MSG")
                let message = Array([[UInt8]](repeating: unit, count: try record.integer("REPEAT")).joined())
                let expected = try record.bytes("MD")
                let context = "\(name) \(message.count) bytes"
                XCTAssertEqual(hexString(SHA256.hash(message, backend: backend)), hexString(expected), context)
                XCTAssertEqual(streamedHash(message, chunkSizes: [1, 3, 64, 1000, 4097], backend: backend), expected, context)
            }
        }
    }

    /// SHA-256 of `messageA` and `messageB` side by side (`SHA256.update`/`finalize` for two
    /// hashes), fed in pieces of `chunkSizesA` and `chunkSizesB` (cycled); a stream that has run
    /// out of input gets empty pieces while the other continues.
    private func pairedHashes(_ messageA: [UInt8], _ messageB: [UInt8], chunkSizesA: [Int], chunkSizesB: [Int],
                              backend: CryptoBackend) -> ([UInt8], [UInt8]) {
        var hashA = SHA256(backend: backend), hashB = SHA256(backend: backend)
        messageA.withUnsafeBytes { allA in
            messageB.withUnsafeBytes { allB in
                var offsetA = 0, offsetB = 0, chunk = 0
                while offsetA < allA.count || offsetB < allB.count {
                    let sizeA = min(chunkSizesA[chunk % chunkSizesA.count], allA.count - offsetA)
                    let sizeB = min(chunkSizesB[chunk % chunkSizesB.count], allB.count - offsetB)
                    SHA256.update(&hashA, UnsafeRawBufferPointer(rebasing: allA[offsetA..<(offsetA + sizeA)]),
                                  &hashB, UnsafeRawBufferPointer(rebasing: allB[offsetB..<(offsetB + sizeB)]))
                    offsetA += sizeA
                    offsetB += sizeB
                    chunk += 1
                }
            }
        }
        var digestA = [UInt8](repeating: 0, count: SHA256.digestByteCount), digestB = digestA
        digestA.withUnsafeMutableBytes { outputA in
            digestB.withUnsafeMutableBytes { outputB in SHA256.finalize(&hashA, into: outputA, &hashB, into: outputB) }
        }
        return (digestA, digestB)
    }

    /// Every CAVP ShortMsg/LongMsg and FIPS 180-2 vector hashed two at a time: paired with
    /// itself (equal lengths: every block compressed as a pair), with the next vector (different
    /// lengths and contents), one shot and in uneven pieces that leave the two hashes' buffers
    /// out of step. Each digest must be its published value.
    func testVectorsHashedTwoAtATime() throws {
        var vectors: [(message: [UInt8], digest: [UInt8], name: String)] = []
        for file in ["SHA2/SHA256ShortMsg.rsp", "SHA2/SHA256LongMsg.rsp"] {
            for record in try VectorFiles.records(file) {
                let message = try cavpMessage(record)
                vectors.append((message, try record.bytes("MD"), "\(file) Len=\(message.count * 8)"))
            }
        }
        for record in try VectorFiles.records("SHA2/fips-180-2-examples.txt") {
            let message = Array([[UInt8]](repeating: try record.bytes("MSG"), count: try record.integer("REPEAT")).joined())
            vectors.append((message, try record.bytes("MD"), "FIPS 180-2 \(message.count) bytes"))
        }
        XCTAssertEqual(vectors.count, 65 + 64 + 3)
        let chunkings: [([Int], [Int])] = [([Int.max], [Int.max]), ([64], [64]), ([1, 64, 2, 127, 55], [63]), ([65], [1000, 3])]
        for (name, backend) in SHA256TestBackends.all {
            for (index, first) in vectors.enumerated() {
                let next = vectors[(index + 1) % vectors.count]
                for (second, chunking) in [(first, chunkings[0]), (next, chunkings[0])] + chunkings.dropFirst().map({ (next, $0) }) {
                    // The million-'a' vector is only paired whole (piecewise it is slow in debug builds).
                    if chunking != chunkings[0] && max(first.message.count, second.message.count) > 100_000 { continue }
                    let (digestA, digestB) = pairedHashes(first.message, second.message, chunkSizesA: chunking.0,
                                                          chunkSizesB: chunking.1, backend: backend)
                    let context = "\(name) \(first.name) with \(second.name), chunks \(chunking)"
                    XCTAssertEqual(hexString(digestA), hexString(first.digest), context)
                    XCTAssertEqual(hexString(digestB), hexString(second.digest), context)
                }
            }
        }
    }

    func testDigestAndBlockSizes() {
        XCTAssertEqual(SHA256.digestByteCount, 32)
        XCTAssertEqual(SHA256.blockByteCount, 64)
    }
}
