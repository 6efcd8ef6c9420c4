// Differential fuzz target: the portable SHA-256 compression function against the SHA-NI one,
// on fuzzed chaining states, block counts and buffer alignments; the two-stream compression
// (`compress2`, both backends) against two one-stream calls; and the two-hash `SHA256.update` /
// `finalize` against portable one-shot digests.
import FuzzSupport
import SpipedCrypto
import SpipedCryptoAccelerated

/// Input layout: 1 byte alignment offset (0...15), 32 bytes initial state (eight native
/// UInt32 words), then whole 64-byte blocks (at most 16; a trailing partial block is ignored).
/// Also checks that hashing the same bytes in fuzzer-chosen pieces through `SHA256` gives the
/// one-shot digest on both backends. Stream B of the two-stream checks is the message reversed
/// (its blocks) and a second state (the words rotated), or for the two-hash `update` a suffix
/// of the reversed message whose length state byte 1 picks, fed in pieces of independent sizes,
/// so paired, unpaired and partial-block paths all run.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard SHA256Hardware.isSupported else { return 0 }
    var input = FuzzedInput(inputBytes(data, count))
    let misalignment = Int(input.byte() & 15)
    let stateBytes = input.takePadded(32)
    let messageBytes = input.rest()
    let blockCount = min(messageBytes.count / 64, 16)

    var initialState = [UInt32](repeating: 0, count: 8)
    for word in 0..<8 {
        for byte in 0..<4 { initialState[word] |= UInt32(stateBytes[4 * word + byte]) << (8 * UInt32(byte)) }
    }
    // Blocks start `misalignment` bytes into a buffer so unaligned loads are exercised.
    var buffer = [UInt8](repeating: 0, count: misalignment + 64 * blockCount)
    buffer.replaceSubrange(misalignment..., with: messageBytes[..<(64 * blockCount)])

    var portableState = initialState
    var hardwareState = initialState
    buffer.withUnsafeBytes { raw in
        let blocks = raw.baseAddress! + misalignment
        portableState.withUnsafeMutableBufferPointer { SHA256Portable.compress($0.baseAddress!, blocks, blockCount) }
        hardwareState.withUnsafeMutableBufferPointer { SHA256Hardware.compress($0.baseAddress!, blocks, blockCount) }
    }
    if portableState != hardwareState {
        fuzzFailure("compress differs: portable \(portableState) hardware \(hardwareState) blocks \(blockCount)")
    }

    // Streaming through the public hash type: pieces cut where the message bytes say.
    let portableOneShot = SHA256.hash(messageBytes, backend: .portable)
    let hardwareBackend = CryptoBackend(kind: .hardware, sha256Compress: { SHA256Hardware.compress($0, $1, $2) },
                                        aes256: CryptoBackend.portable.aes256)
    var streamed = SHA256(backend: hardwareBackend)
    var offset = 0
    var cutSeed = Int(stateBytes[0])
    while offset < messageBytes.count {
        let piece = min(messageBytes.count - offset, cutSeed % 131)
        streamed.update(Array(messageBytes[offset..<(offset + piece)]))
        offset += piece
        cutSeed = (cutSeed &* 33 &+ 17) & 0xffff
    }
    let hardwareStreamed = streamed.finalize()
    if portableOneShot != hardwareStreamed {
        fuzzFailure("SHA256 digest differs: one-shot portable \(hex(portableOneShot)) streamed hardware \(hex(hardwareStreamed))")
    }

    checkTwoStreamCompression(initialState: initialState, buffer: buffer, misalignment: misalignment, blockCount: blockCount)
    checkTwoHashUpdate(messageBytes: messageBytes, stateBytes: stateBytes)
    return 0
}

/// `compress2` of both backends against two one-stream portable calls: stream A as above,
/// stream B the same blocks in reverse order from the state words rotated by one.
private func checkTwoStreamCompression(initialState: [UInt32], buffer: [UInt8], misalignment: Int, blockCount: Int) {
    var reversedBlocks = [UInt8](repeating: 0, count: buffer.count)
    for block in 0..<blockCount {
        let source = misalignment + 64 * block, target = misalignment + 64 * (blockCount - 1 - block)
        reversedBlocks.replaceSubrange(target..<(target + 64), with: buffer[source..<(source + 64)])
    }
    let stateB = Array(initialState[1...] + initialState[..<1])
    var expectedA = initialState, expectedB = stateB
    var portableA = initialState, portableB = stateB
    var hardwareA = initialState, hardwareB = stateB
    buffer.withUnsafeBytes { rawA in
        reversedBlocks.withUnsafeBytes { rawB in
            let blocksA = rawA.baseAddress! + misalignment, blocksB = rawB.baseAddress! + misalignment
            expectedA.withUnsafeMutableBufferPointer { SHA256Portable.compress($0.baseAddress!, blocksA, blockCount) }
            expectedB.withUnsafeMutableBufferPointer { SHA256Portable.compress($0.baseAddress!, blocksB, blockCount) }
            portableA.withUnsafeMutableBufferPointer { a in
                portableB.withUnsafeMutableBufferPointer { b in
                    SHA256Portable.compress2(a.baseAddress!, blocksA, b.baseAddress!, blocksB, blockCount)
                }
            }
            hardwareA.withUnsafeMutableBufferPointer { a in
                hardwareB.withUnsafeMutableBufferPointer { b in
                    SHA256Hardware.compress2(a.baseAddress!, blocksA, b.baseAddress!, blocksB, blockCount)
                }
            }
        }
    }
    if (portableA, portableB) != (expectedA, expectedB) {
        fuzzFailure("portable compress2 differs from two compress calls: blocks \(blockCount)")
    }
    if (hardwareA, hardwareB) != (expectedA, expectedB) {
        fuzzFailure("SHA-NI compress2 differs from two portable compress calls: blocks \(blockCount)")
    }
}

/// Two messages hashed side by side with `SHA256.update(_:_:_:_:)` and the two-hash `finalize`
/// on the SHA-NI backend (one-stream and two-stream compression), in pieces cut where the
/// message bytes say, against portable one-shot digests. Message A is the whole message,
/// message B a suffix of it reversed; the piece sizes of A and B differ from call to call
/// unless state byte 2 is even, when both take equal pieces (the fully paired HMAC case).
private func checkTwoHashUpdate(messageBytes: [UInt8], stateBytes: [UInt8]) {
    let messageA = messageBytes
    let messageB = Array(messageBytes.reversed().prefix(Int(stateBytes[1]) * 17 % (messageBytes.count + 1)))
    let equalPieces = stateBytes[2] & 1 == 0
    let hardwareBackend = CryptoBackend(kind: .hardware, sha256Compress: { SHA256Hardware.compress($0, $1, $2) },
                                        sha256Compress2: { SHA256Hardware.compress2($0, $1, $2, $3, $4) },
                                        aes256: CryptoBackend.portable.aes256)
    var hashA = SHA256(backend: hardwareBackend), hashB = SHA256(backend: hardwareBackend)
    var offsetA = 0, offsetB = 0
    var cutSeed = Int(stateBytes[3]) | Int(stateBytes[4]) << 8
    while offsetA < messageA.count || offsetB < messageB.count {
        let pieceA = min(messageA.count - offsetA, cutSeed % 197)
        cutSeed = (cutSeed &* 33 &+ 17) & 0xffff
        let pieceB = min(messageB.count - offsetB, equalPieces ? pieceA : cutSeed % 149)
        cutSeed = (cutSeed &* 33 &+ 17) & 0xffff
        messageA.withUnsafeBytes { bytesA in
            messageB.withUnsafeBytes { bytesB in
                SHA256.update(&hashA, UnsafeRawBufferPointer(rebasing: bytesA[offsetA..<(offsetA + pieceA)]),
                              &hashB, UnsafeRawBufferPointer(rebasing: bytesB[offsetB..<(offsetB + pieceB)]))
            }
        }
        offsetA += pieceA
        offsetB += pieceB
    }
    var digestA = [UInt8](repeating: 0, count: SHA256.digestByteCount), digestB = digestA
    digestA.withUnsafeMutableBytes { outputA in
        digestB.withUnsafeMutableBytes { outputB in SHA256.finalize(&hashA, into: outputA, &hashB, into: outputB) }
    }
    let expectedA = SHA256.hash(messageA, backend: .portable), expectedB = SHA256.hash(messageB, backend: .portable)
    if digestA != expectedA || digestB != expectedB {
        fuzzFailure("two-hash SHA256 differs: A \(hex(digestA)) vs \(hex(expectedA)), B \(hex(digestB)) vs \(hex(expectedB)), lengths \(messageA.count)/\(messageB.count), equal pieces \(equalPieces)")
    }
}

/// The executable's entry point (SwiftPM links `diff_sha256_main` as `main`).
@_cdecl("diff_sha256_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
