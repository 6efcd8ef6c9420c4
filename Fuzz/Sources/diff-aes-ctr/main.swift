// Differential fuzz target: the bitsliced portable AES-256 engine against the AES-NI engine
// and (when the CPU and OS support it) the VAES engine, on fuzzed keys, counters (including
// 64- and 128-bit carries), lengths and alignments.
import FuzzSupport
import SpipedCrypto
import SpipedCryptoAccelerated

/// Input layout: 32 bytes key, 8 bytes counter high, 8 bytes counter low, 1 byte of options
/// (bit 0: run the portable engine in place, bit 1: push the low counter word to within 32
/// blocks of its wrap, bits 2-5: misalignment of the data), then the data (up to 4 KiB).
/// The VAES engine always runs in place on the misaligned copy.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard AES256Hardware.isSupported else { return 0 }
    var input = FuzzedInput(inputBytes(data, count))
    let key = input.takePadded(32)
    let counterHigh = input.integer(byteCount: 8)
    var counterLow = input.integer(byteCount: 8)
    let options = input.byte()
    let inPlace = options & 1 != 0
    if options & 2 != 0 { counterLow = UInt64.max - (counterLow & 31) }   // carry within 32 blocks
    let misalignment = Int(options >> 2) & 15
    let plaintext = input.rest()

    let portable = AES256Portable.engine
    let hardware = AES256Hardware.engine
    let portableSchedule = UnsafeMutableRawPointer.allocate(byteCount: portable.scheduleByteCount, alignment: 16)
    let hardwareSchedule = UnsafeMutableRawPointer.allocate(byteCount: hardware.scheduleByteCount, alignment: 16)
    defer {
        portableSchedule.deallocate()
        hardwareSchedule.deallocate()
    }
    key.withUnsafeBytes {
        portable.expandKey($0.baseAddress!, portableSchedule)
        hardware.expandKey($0.baseAddress!, hardwareSchedule)
    }

    // Single blocks: the first 16 plaintext bytes (zero-padded) through both engines.
    let block = plaintext.prefix(16) + [UInt8](repeating: 0, count: 16 - min(16, plaintext.count))
    var portableBlock = [UInt8](repeating: 0, count: 16)
    var hardwareBlock = [UInt8](repeating: 0, count: 16)
    block.withUnsafeBytes { source in
        portableBlock.withUnsafeMutableBytes { portable.encryptBlock(portableSchedule, source.baseAddress!, $0.baseAddress!) }
        hardwareBlock.withUnsafeMutableBytes { hardware.encryptBlock(hardwareSchedule, source.baseAddress!, $0.baseAddress!) }
    }
    if portableBlock != hardwareBlock {
        fuzzFailure("encryptBlock differs: key \(hex(key)) block \(hex(block))")
    }

    // CTR over the whole data, at an odd offset; the portable run optionally in place.
    let length = plaintext.count
    var source = [UInt8](repeating: 0, count: misalignment + length)
    source.replaceSubrange(misalignment..., with: plaintext)
    var portableOutput = [UInt8](repeating: 0, count: misalignment + length)
    var hardwareOutput = [UInt8](repeating: 0, count: length)
    if inPlace {
        portableOutput = source
        portableOutput.withUnsafeMutableBytes { buffer in
            let start = buffer.baseAddress! + misalignment
            portable.ctrXor(portableSchedule, counterHigh, counterLow, start, start, length)
        }
    } else {
        source.withUnsafeBytes { sourceBuffer in
            portableOutput.withUnsafeMutableBytes { buffer in
                portable.ctrXor(portableSchedule, counterHigh, counterLow, sourceBuffer.baseAddress! + misalignment,
                                buffer.baseAddress! + misalignment, length)
            }
        }
    }
    plaintext.withUnsafeBytes { sourceBuffer in
        hardwareOutput.withUnsafeMutableBytes { buffer in
            guard length > 0 else { return }
            hardware.ctrXor(hardwareSchedule, counterHigh, counterLow, sourceBuffer.baseAddress!, buffer.baseAddress!, length)
        }
    }
    if Array(portableOutput[misalignment...]) != hardwareOutput {
        fuzzFailure("ctrXor differs: key \(hex(key)) counter \(counterHigh):\(counterLow) length \(length) inPlace \(inPlace)")
    }

    // The VAES engine: AES-NI's key schedule, its own 256-bit CTR loop; in place, misaligned.
    if AES256Hardware.isVectorAESSupported {
        let vector = AES256Hardware.vectorEngine
        let vectorSchedule = UnsafeMutableRawPointer.allocate(byteCount: vector.scheduleByteCount, alignment: 16)
        defer { vectorSchedule.deallocate() }
        key.withUnsafeBytes { vector.expandKey($0.baseAddress!, vectorSchedule) }
        var vectorOutput = source
        vectorOutput.withUnsafeMutableBytes { buffer in
            guard length > 0 else { return }
            let start = buffer.baseAddress! + misalignment
            vector.ctrXor(vectorSchedule, counterHigh, counterLow, start, start, length)
        }
        if vectorOutput[misalignment...] != portableOutput[misalignment...] {
            fuzzFailure("VAES ctrXor differs: key \(hex(key)) counter \(counterHigh):\(counterLow) length \(length)")
        }
    }

    // CTR is its own inverse: decrypting the hardware ciphertext with the portable engine.
    var roundTrip = hardwareOutput
    roundTrip.withUnsafeMutableBytes { buffer in
        guard length > 0 else { return }
        portable.ctrXor(portableSchedule, counterHigh, counterLow, buffer.baseAddress!, buffer.baseAddress!, length)
    }
    if roundTrip != plaintext { fuzzFailure("portable CTR does not invert hardware CTR") }

    // The first keystream block is the encryption of the counter block itself.
    if length >= 16 {
        var counterBlock = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            counterBlock[index] = UInt8(truncatingIfNeeded: counterHigh >> (56 - 8 * UInt64(index)))
            counterBlock[8 + index] = UInt8(truncatingIfNeeded: counterLow >> (56 - 8 * UInt64(index)))
        }
        var keystream = [UInt8](repeating: 0, count: 16)
        counterBlock.withUnsafeBytes { counterBuffer in
            keystream.withUnsafeMutableBytes { portable.encryptBlock(portableSchedule, counterBuffer.baseAddress!, $0.baseAddress!) }
        }
        for index in 0..<16 where hardwareOutput[index] != plaintext[index] ^ keystream[index] {
            fuzzFailure("first CTR block is not E(counter) xor plaintext")
        }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `diff_aes_ctr_main` as `main`).
@_cdecl("diff_aes_ctr_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
