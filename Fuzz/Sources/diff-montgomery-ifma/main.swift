// Differential fuzz target: the AVX-512 IFMA Montgomery engine (issue 15) against the portable
// code, on fuzzer-chosen bases, exponents and operands: its own whole exponentiation (modPow,
// sharedSecret), the base-2 paths that run on its multiply/square contract (comb, square and
// double), and single contract multiplications and squarings (also in place). On a CPU without
// AVX512F/IFMA/VL every input is accepted unchecked (the engine cannot run there).
import FuzzSupport
import SpipedCrypto
import SpipedCryptoAccelerated

/// The IFMA engine when this CPU and OS can run it (not gated by its self-test: a wrong kernel
/// must be found here, not silently replaced).
private let engine: Montgomery2048Engine? = Montgomery2048IFMAHardware.isSupported ? Montgomery2048IFMAHardware.engine : nil

/// A backend whose only non-portable part is the IFMA engine.
private let ifma: CryptoBackend? = engine.map { engine in
    let portable = CryptoBackend.portable
    return CryptoBackend(kind: .hardware, sha256Compress: portable.sha256Compress, aes256: portable.aes256, montgomery2048: engine)
}

/// Limbs in a 2048-bit number.
private let limbCount = 32

/// Up to 256 big-endian bytes as 32 little-endian limbs.
private func limbs(bigEndian bytes: [UInt8]) -> [UInt64] {
    var result = [UInt64](repeating: 0, count: limbCount)
    for (position, byte) in bytes.reversed().enumerated() where position < 256 {
        result[position / 8] |= UInt64(byte) << (8 * UInt64(position % 8))
    }
    return result
}

/// Input layout: 1 byte of options (bits 0-5: exponent length 0...63; bit 6: a 32-byte
/// exponent (the comb's length) instead; bit 7: a 256-byte exponent instead), the exponent,
/// then up to 256 base bytes (big-endian; a 256-byte base whose first byte has its high bit set
/// is mostly overwritten with p's leading bytes, so values near p are common), then up to 256
/// bytes of a second operand for the contract functions.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let engine, let ifma else { return 0 }
    var input = FuzzedInput(inputBytes(data, count))
    let options = input.byte()
    let exponentLength = options & 0x80 != 0 ? 256 : options & 0x40 != 0 ? 32 : Int(options & 0x3F)
    let exponent = input.take(exponentLength)
    var base = input.take(256)
    if base.count == 256 && base[0] & 0x80 != 0 {
        let prime = DiffieHellmanGroup14.primeBytes
        let keep = 4 + Int(base[1]) % 250
        base = Array(prime[..<(256 - keep)]) + base[(256 - keep)...]
    }
    let other = input.take(256)

    // The engine's own exponentiation against the portable ladder.
    let expected = DiffieHellmanGroup14.modPow(base: base, exponent: exponent)
    let actual = DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: ifma)
    if actual != expected {
        fuzzFailure("IFMA modPow differs: base \(hex(base)) exponent \(hex(exponent)) got \(hex(actual)) expected \(hex(expected))")
    }
    if !exponent.isEmpty {
        // Base 2 through the contract (comb for 32 bytes, square-and-double otherwise).
        let privateExponent = DHPrivateExponent(bigEndianBytes: exponent)
        if privateExponent.publicValue(backend: ifma) != privateExponent.publicValue() {
            fuzzFailure("IFMA 2^x differs: exponent \(hex(exponent))")
        }
        let peer = [UInt8](repeating: 0, count: 256 - base.count) + base
        let fromPortable = try? privateExponent.sharedSecret(peerPublicValue: peer, requireForwardSecrecy: false)
        let fromIFMA = try? privateExponent.sharedSecret(peerPublicValue: peer, requireForwardSecrecy: false, backend: ifma)
        if fromPortable != fromIFMA {
            fuzzFailure("IFMA sharedSecret differs: peer \(hex(peer)) exponent \(hex(exponent))")
        }
    }

    // The contract: a < R (any 2048-bit value), b < p (reduced here by the portable modPow).
    let a = limbs(bigEndian: base)
    let b = limbs(bigEndian: DiffieHellmanGroup14.modPow(base: other, exponent: [1]))
    let reducedA = limbs(bigEndian: DiffieHellmanGroup14.modPow(base: base, exponent: [1]))
    let modulus = Montgomery2048Engine.modulusLimbs
    let scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * Montgomery2048Engine.scratchLimbCount)
    defer { scratch.deallocate() }
    let referenceScratch = scratch + Montgomery2048Engine.scratchLimbCount
    modulus.withUnsafeBufferPointer { p in
        let p = p.baseAddress!
        var fromIFMA = [UInt64](repeating: 0, count: limbCount), reference = fromIFMA
        engine.multiply(&fromIFMA, a, b, p, scratch)
        Montgomery2048Engine.portable.multiply(&reference, a, b, p, referenceScratch)
        if fromIFMA != reference { fuzzFailure("IFMA multiply differs: a \(hex(base)) b \(hex(other))") }
        engine.square(&fromIFMA, reducedA, p, scratch)
        Montgomery2048Engine.portable.square(&reference, reducedA, p, referenceScratch)
        if fromIFMA != reference { fuzzFailure("IFMA square differs: a \(hex(base))") }
        var inPlace = reducedA
        inPlace.withUnsafeMutableBufferPointer { engine.square($0.baseAddress!, $0.baseAddress!, p, scratch) }
        if inPlace != reference { fuzzFailure("IFMA square in place differs: a \(hex(base))") }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `diff_montgomery_ifma_main` as `main`).
@_cdecl("diff_montgomery_ifma_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
