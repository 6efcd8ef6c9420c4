// Differential fuzz target: the portable SHA-256 compression function against the SHA-NI one,
// on fuzzed chaining states, block counts and buffer alignments.
import FuzzSupport
import SpipedCrypto
import SpipedCryptoAccelerated

/// Input layout: 1 byte alignment offset (0...15), 32 bytes initial state (eight native
/// UInt32 words), then whole 64-byte blocks (at most 16; a trailing partial block is ignored).
/// Also checks that hashing the same bytes in fuzzer-chosen pieces through `SHA256` gives the
/// one-shot digest on both backends.
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
    let hardwareBackend = CryptoBackend(kind: .hardware, sha256Compress: SHA256Hardware.compress,
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
    return 0
}

/// The executable's entry point (SwiftPM links `diff_sha256_main` as `main`).
@_cdecl("diff_sha256_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
