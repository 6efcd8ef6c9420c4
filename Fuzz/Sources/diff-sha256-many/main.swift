// Differential fuzz target: every multi-stream SHA-256 engine this CPU supports (SHA-NI x4,
// AVX-512 x16) against portable one-stream compression, on fuzzed stream counts, chaining
// states, block counts and alignments; and the batch `SHA256` / `HMACSHA256` API through a
// backend using each engine against portable one-at-a-time digests and tags.
import FuzzSupport
import SpipedCrypto
import SpipedCryptoAccelerated

/// Input layout: 1 byte stream count (mod lanes, + 1), 1 byte block count (mod 5), 1 byte
/// alignment seed, 1 byte piece-size seed, 32 bytes base state, then the message bytes (the
/// blocks of stream s start s * 7 bytes into them, so streams read different blocks; messages
/// of the batch hash are the same bytes rotated by s).
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let engines = SHA256MultiStream.all.filter(\.isSupported)
    guard !engines.isEmpty else { return 0 }
    var input = FuzzedInput(inputBytes(data, count))
    let countByte = Int(input.byte()), blockByte = Int(input.byte())
    let alignment = Int(input.byte()), pieceSeed = Int(input.byte())
    let stateBytes = input.takePadded(32)
    let message = input.rest()
    for engine in engines {
        let streamCount = countByte % engine.lanes + 1
        checkCompression(engine, streamCount: streamCount, blockCount: blockByte % 5, alignment: alignment,
                         stateBytes: stateBytes, message: message)
        checkBatchAPI(engine, count: countByte % (engine.lanes + 3) + 1, pieceSeed: pieceSeed, message: message)
    }
    return 0
}

/// `engine.compress` over `streamCount` streams against one portable `compress` per stream.
private func checkCompression(_ engine: SHA256MultiStreamEngine, streamCount: Int, blockCount: Int, alignment: Int,
                              stateBytes: [UInt8], message: [UInt8]) {
    let span = 64 * blockCount
    // One buffer per stream, its blocks taken cyclically from the message at offset 7 s,
    // placed (alignment + s) % 16 bytes into the buffer.
    let buffers: [[UInt8]] = (0..<streamCount).map { stream in
        let offset = (alignment + stream) % 16
        var buffer = [UInt8](repeating: UInt8(truncatingIfNeeded: stream), count: offset + span)
        if !message.isEmpty {
            for index in 0..<span { buffer[offset + index] = message[(7 * stream + index) % message.count] }
        }
        return buffer
    }
    var states = [UInt32](repeating: 0, count: 8 * streamCount)
    for stream in 0..<streamCount {
        for word in 0..<8 {
            var value: UInt32 = 0
            for byte in 0..<4 { value |= UInt32(stateBytes[4 * word + byte]) << (8 * UInt32(byte)) }
            states[8 * stream + word] = value &+ UInt32(stream) &* 0x9e37_79b9
        }
    }
    var expected = states
    withPointers(buffers) { blocks in
        for stream in 0..<streamCount {
            let offset = (alignment + stream) % 16
            expected.withUnsafeMutableBufferPointer {
                SHA256Portable.compress($0.baseAddress! + 8 * stream, blocks[stream] + offset, blockCount)
            }
        }
        let sources = (0..<streamCount).map { blocks[$0] + (alignment + $0) % 16 }
        states.withUnsafeMutableBufferPointer { words in
            let statePointers = (0..<streamCount).map { words.baseAddress! + 8 * $0 }
            statePointers.withUnsafeBufferPointer { stateList in
                sources.withUnsafeBufferPointer { sourceList in
                    engine.compress(stateList.baseAddress!, sourceList.baseAddress!, streamCount, blockCount)
                }
            }
        }
    }
    if states != expected {
        fuzzFailure("\(engine.name) compress differs from portable: streams \(streamCount) blocks \(blockCount) alignment \(alignment)")
    }
}

/// `count` equal-length messages (the message rotated by s) through the batch SHA256 API in
/// pieces cut where the seed says, and through batch HMAC, against portable one-at-a-time.
private func checkBatchAPI(_ engine: SHA256MultiStreamEngine, count: Int, pieceSeed: Int, message: [UInt8]) {
    let backend = CryptoBackend(kind: .hardware, sha256Compress: { SHA256Portable.compress($0, $1, $2) },
                                sha256CompressMany: engine.compress, sha256Lanes: engine.lanes,
                                aes256: CryptoBackend.portable.aes256)
    let length = message.count
    let messages: [[UInt8]] = (0..<count).map { s in
        length == 0 ? [] : Array(message[(s % length)...] + message[..<(s % length)])
    }
    var hashes = [SHA256](repeating: SHA256(backend: backend), count: count)
    var digests = [UInt8](repeating: 0, count: 32 * count)
    withPointers(messages) { inputs in
        hashes.withUnsafeMutableBufferPointer { batch in
            var offset = 0
            var cut = pieceSeed
            while offset < length {
                let piece = min(length - offset, cut % 150 + 1)
                cut = (cut &* 33 &+ 17) & 0xffff
                let pieceInputs = inputs.map { $0 + offset }
                pieceInputs.withUnsafeBufferPointer { SHA256.update(batch, $0, byteCount: piece) }
                offset += piece
            }
            digests.withUnsafeMutableBytes { out in
                let outputs = (0..<count).map { out.baseAddress! + 32 * $0 }
                outputs.withUnsafeBufferPointer { SHA256.finalize(batch, into: $0) }
            }
        }
    }
    var tags = [UInt8](repeating: 0, count: 32 * count)
    let key = Array(message.prefix(40))
    let keyed = HMACSHA256(key: key, backend: backend)
    withPointers(messages) { inputs in
        tags.withUnsafeMutableBytes { out in
            let outputs = (0..<count).map { out.baseAddress! + 32 * $0 }
            inputs.withUnsafeBufferPointer { list in
                outputs.withUnsafeBufferPointer { keyed.authenticationCodes(list, byteCount: length, tags: $0) }
            }
        }
    }
    for index in 0..<count {
        let digest = Array(digests[(32 * index)..<(32 * index + 32)])
        let expected = SHA256.hash(messages[index], backend: .portable)
        if digest != expected {
            fuzzFailure("\(engine.name) batch SHA256 differs for message \(index) of \(count): \(hex(digest)) vs \(hex(expected)), length \(length)")
        }
        let tag = Array(tags[(32 * index)..<(32 * index + 32)])
        let expectedTag = HMACSHA256.authenticationCode(key: key, message: messages[index], backend: .portable)
        if tag != expectedTag {
            fuzzFailure("\(engine.name) batch HMAC differs for message \(index) of \(count), length \(length)")
        }
    }
}

/// Calls `body` with the base addresses of `buffers` (valid during the call; an empty buffer
/// gets a pointer it never reads through).
private func withPointers(_ buffers: [[UInt8]], _ body: ([UnsafeRawPointer]) -> Void) {
    func nest(_ index: Int, _ collected: [UnsafeRawPointer]) {
        if index == buffers.count { return body(collected) }
        buffers[index].withUnsafeBytes { raw in
            nest(index + 1, collected + [raw.baseAddress ?? UnsafeRawPointer(bitPattern: 16)!])
        }
    }
    nest(0, [])
}

/// The executable's entry point (SwiftPM links `diff_sha256_many_main` as `main`).
@_cdecl("diff_sha256_many_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
