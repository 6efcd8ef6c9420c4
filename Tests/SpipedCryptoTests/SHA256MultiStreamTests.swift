import Foundation
import XCTest
import SpipedCrypto
import SpipedCryptoAccelerated

/// The multi-stream SHA-256 engines (SHA-NI x4, AVX-512 x16) and the batch `SHA256` / `HMACSHA256`
/// API built on them: NIST vectors through every lane, agreement with the portable code on random
/// input, and batches of every size equal to one-at-a-time hashing.
final class SHA256MultiStreamTests: XCTestCase {
    /// A backend whose only fast path is `engine` (portable singles for remainders), so a test
    /// exercises exactly that engine.
    private func backend(_ engine: SHA256MultiStreamEngine) -> CryptoBackend {
        CryptoBackend(kind: .hardware, sha256Compress: { SHA256Portable.compress($0, $1, $2) },
                      sha256CompressMany: engine.compress, sha256Lanes: engine.lanes, aes256: SHA256TestBackends.unusedAES)
    }

    /// The engine, or an XCTSkip naming what the CPU lacks.
    private func supported(_ engine: SHA256MultiStreamEngine) throws -> SHA256MultiStreamEngine {
        guard engine.isSupported else { throw XCTSkip("CPU or OS lacks \(engine.name); its tests are skipped") }
        return engine
    }

    /// Every backend the batch API is checked through: portable (pairs), portable one-stream,
    /// SHA-NI x2, and each supported multi-stream engine.
    private var batchBackends: [(name: String, backend: CryptoBackend)] {
        SHA256TestBackends.all + SHA256MultiStream.all.filter(\.isSupported).map { ($0.name, backend($0)) }
    }

    /// Digests of `messages` (equal lengths) through the batch API, fed in the given piece sizes.
    private func batchDigests(_ messages: [[UInt8]], pieces: [Int], backend: CryptoBackend) -> [[UInt8]] {
        let count = messages.count
        let length = messages.first?.count ?? 0
        var hashes = [SHA256](repeating: SHA256(backend: backend), count: count)
        var digests = [UInt8](repeating: 0, count: 32 * count)
        let flat = messages.flatMap { $0 }
        flat.withUnsafeBytes { all in
            hashes.withUnsafeMutableBufferPointer { batch in
                var offset = 0, piece = 0
                while offset < length {
                    let size = min(pieces[piece % pieces.count], length - offset)
                    let inputs = (0..<count).map { all.baseAddress! + $0 * length + offset }
                    inputs.withUnsafeBufferPointer { SHA256.update(batch, $0, byteCount: size) }
                    offset += size
                    piece += 1
                }
                digests.withUnsafeMutableBytes { out in
                    let outputs = (0..<count).map { out.baseAddress! + 32 * $0 }
                    outputs.withUnsafeBufferPointer { SHA256.finalize(batch, into: $0) }
                }
            }
        }
        return (0..<count).map { Array(digests[(32 * $0)..<(32 * $0 + 32)]) }
    }

    private func cavpMessage(_ record: VectorFiles.Record) throws -> [UInt8] {
        let bitLength = try record.integer("Len")
        return Array(try record.bytes("Msg").prefix(bitLength / 8))
    }

    /// NIST CAVP ShortMsg and LongMsg through every lane of `engine`: each vector is hashed in
    /// all lanes at once (and in a partial group of lanes - 1), whole and in 1028 + 8 pieces.
    private func checkVectors(_ engine: SHA256MultiStreamEngine) throws {
        let records = try VectorFiles.records("SHA2/SHA256ShortMsg.rsp") + VectorFiles.records("SHA2/SHA256LongMsg.rsp")
        XCTAssertEqual(records.count, 129)
        let backend = backend(engine)
        for record in records {
            let message = try cavpMessage(record)
            let expected = try record.bytes("MD")
            for count in [engine.lanes, engine.lanes - 1] {
                for pieces in [[max(message.count, 1)], [1028, 8]] {
                    let digests = batchDigests(Array(repeating: message, count: count), pieces: pieces, backend: backend)
                    for (lane, digest) in digests.enumerated() {
                        XCTAssertEqual(digest, expected, "\(engine.name) Len=\(message.count * 8) lane \(lane) of \(count) pieces \(pieces)")
                    }
                }
            }
        }
    }

    func testNISTVectorsThroughEveryLaneOfSHANIx4() throws {
        try checkVectors(try supported(SHA256MultiStream.shaNIFourStreams))
    }

    func testNISTVectorsThroughEveryLaneOfAVX512x16() throws {
        try checkVectors(try supported(SHA256MultiStream.avx512SixteenLanes))
    }

    /// Each engine's compression equals portable one-stream compression per stream, for every
    /// stream count 1...lanes, block counts 0...4, random distinct states, and misaligned
    /// distinct block inputs (and all streams sharing one input).
    func testEnginesMatchPortableCompressionOnRandomInput() throws {
        let engines = SHA256MultiStream.all.filter(\.isSupported)
        guard !engines.isEmpty else { throw XCTSkip("CPU has no multi-stream SHA-256 engine") }
        let seed: UInt64 = 0x4d55_4c54_49   // fixed so failures reproduce
        var random = SHA256TestRandom(state: seed)
        for engine in engines {
            for streamCount in 1...engine.lanes {
                for blockCount in 0...4 {
                    let shared = (streamCount + blockCount) % 5 == 0
                    let buffers = (0..<streamCount).map { _ in random.bytes(64 * blockCount + 16) }
                    let offsets = (0..<streamCount).map { _ in Int.random(in: 0..<16, using: &random) }
                    let initial = (0..<(8 * streamCount)).map { _ in UInt32.random(in: .min ... .max, using: &random) }
                    var expected = initial, states = initial
                    let flat = buffers.flatMap { $0 }
                    let stride = 64 * blockCount + 16
                    flat.withUnsafeBytes { raw in
                        let inputs = (0..<streamCount).map { shared ? raw.baseAddress! : raw.baseAddress! + $0 * stride + offsets[$0] }
                        expected.withUnsafeMutableBufferPointer { words in
                            for stream in 0..<streamCount {
                                SHA256Portable.compress(words.baseAddress! + 8 * stream, inputs[stream], blockCount)
                            }
                        }
                        states.withUnsafeMutableBufferPointer { words in
                            let pointers = (0..<streamCount).map { words.baseAddress! + 8 * $0 }
                            pointers.withUnsafeBufferPointer { statePointers in
                                inputs.withUnsafeBufferPointer { blockPointers in
                                    engine.compress(statePointers.baseAddress!, blockPointers.baseAddress!, streamCount, blockCount)
                                }
                            }
                        }
                    }
                    XCTAssertEqual(states, expected, "\(engine.name) seed \(seed) streams \(streamCount) blocks \(blockCount) shared \(shared)")
                }
            }
        }
    }

    /// Batch `SHA256.update`/`finalize` over 1...lanes + 3 random messages of several lengths
    /// (including 1036, a packet's MAC input) equal one-at-a-time portable hashes, on every
    /// backend, fed whole, as 1028 + 8, and in pieces that leave partial blocks.
    func testBatchHashesMatchOneAtATime() throws {
        var random = SHA256TestRandom(state: 0x4241_5443_48)
        for (name, backend) in batchBackends {
            let widest = max(backend.sha256Lanes, 2)
            for count in 1...(widest + 3) {
                for length in [0, 1, 55, 56, 63, 64, 65, 1036, 1060, 2000] {
                    let messages = (0..<count).map { _ in random.bytes(length) }
                    let expected = messages.map { SHA256.hash($0, backend: .portable) }
                    for pieces in [[max(length, 1)], [1028, 8], [7, 64, 100, 1]] {
                        XCTAssertEqual(batchDigests(messages, pieces: pieces, backend: backend), expected,
                                       "\(name) count \(count) length \(length) pieces \(pieces)")
                    }
                }
            }
        }
    }

    /// Hashes that are not in step (different buffered byte counts) still get correct digests
    /// from the batch API (it falls back to one at a time).
    func testBatchOfHashesOutOfStepIsStillCorrect() throws {
        var random = SHA256TestRandom(state: 0x4f55_54)
        for (name, backend) in batchBackends {
            let count = max(backend.sha256Lanes, 2) + 1
            let prefixes = (0..<count).map { random.bytes($0 * 5) }
            let bodies = (0..<count).map { _ in random.bytes(300) }
            var hashes = prefixes.map { prefix -> SHA256 in
                var hash = SHA256(backend: backend)
                hash.update(prefix)
                return hash
            }
            var digests = [UInt8](repeating: 0, count: 32 * count)
            let flat = bodies.flatMap { $0 }
            flat.withUnsafeBytes { all in
                hashes.withUnsafeMutableBufferPointer { batch in
                    let inputs = (0..<count).map { all.baseAddress! + 300 * $0 }
                    inputs.withUnsafeBufferPointer { SHA256.update(batch, $0, byteCount: 300) }
                    digests.withUnsafeMutableBytes { out in
                        let outputs = (0..<count).map { out.baseAddress! + 32 * $0 }
                        outputs.withUnsafeBufferPointer { SHA256.finalize(batch, into: $0) }
                    }
                }
            }
            for index in 0..<count {
                XCTAssertEqual(Array(digests[(32 * index)..<(32 * index + 32)]),
                               SHA256.hash(prefixes[index] + bodies[index], backend: .portable), "\(name) hash \(index)")
            }
        }
    }

    /// Batch HMAC (`authenticationCodes` over pointer lists) of 1...lanes + 3 packet-sized
    /// messages equals one-at-a-time portable HMAC, on every backend, and leaves the keyed state usable.
    func testBatchHMACMatchesOneAtATime() throws {
        var random = SHA256TestRandom(state: 0x484d_4143)
        let key = random.bytes(32)
        for (name, backend) in batchBackends {
            let keyed = HMACSHA256(key: key, backend: backend)
            for count in 1...(max(backend.sha256Lanes, 2) + 3) {
                for length in [0, 32, 1036] {
                    let messages = (0..<count).map { _ in random.bytes(length) }
                    var tags = [UInt8](repeating: 0, count: 32 * count)
                    let flat = Array(messages.joined()) + [UInt8(0)]
                    flat.withUnsafeBytes { all in
                        tags.withUnsafeMutableBytes { out in
                            let inputs = (0..<count).map { all.baseAddress! + length * $0 }
                            let outputs = (0..<count).map { out.baseAddress! + 32 * $0 }
                            inputs.withUnsafeBufferPointer { list in
                                outputs.withUnsafeBufferPointer { keyed.authenticationCodes(list, byteCount: length, tags: $0) }
                            }
                        }
                    }
                    for index in 0..<count {
                        XCTAssertEqual(Array(tags[(32 * index)..<(32 * index + 32)]),
                                       HMACSHA256.authenticationCode(key: key, message: messages[index], backend: .portable),
                                       "\(name) count \(count) length \(length) message \(index)")
                    }
                }
            }
        }
    }

    /// Every supported engine passes the start-up self-test, and the selection lists exactly those.
    func testSupportedEnginesPassTheirSelfTest() throws {
        let engines = SHA256MultiStream.all.filter(\.isSupported)
        guard !engines.isEmpty else { throw XCTSkip("CPU has no multi-stream SHA-256 engine") }
        for engine in engines { XCTAssertTrue(SHA256MultiStream.passesSelfTest(engine), engine.name) }
    }

    /// `isAVX512Supported` agrees with the kernel's view (`avx2`, `avx512f`, `avx512bw`,
    /// `avx512vl` in /proc/cpuinfo; the kernel lists them only when it saves their state).
    func testAVX512SupportMatchesProcCPUInfo() throws {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("/proc/cpuinfo not readable")
        }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        let expected = ["avx2", "avx512f", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        XCTAssertEqual(SHA256MultiStream.isAVX512Supported, expected)
        XCTAssertEqual(SHA256MultiStream.avx512SixteenLanes.isSupported, expected)
        XCTAssertEqual(SHA256MultiStream.shaNIFourStreams.isSupported, SHA256Hardware.isSupported)
    }
}
