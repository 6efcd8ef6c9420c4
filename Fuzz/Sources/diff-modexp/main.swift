// Differential fuzz target: group-14 modular exponentiation (Montgomery, fixed window, comb)
// against a schoolbook shift-and-add implementation written here, plus the peer-value checks
// against their definition. Every result is computed with the portable arithmetic and with the
// selected backend's Montgomery engine (mulx on CPUs with BMI2).
import FuzzSupport
import SpipedCrypto
import SpipedCryptoAccelerated

/// The selected backend: its Montgomery engine is checked alongside the portable code.
private let selected = CryptoBackendSelection.best

/// Limbs in a 2048-bit number (64-bit limbs, least significant first).
private let limbCount = 32

/// Schoolbook arithmetic mod p on 32-limb little-endian numbers, bit by bit. Deliberately
/// simple and slow; it shares no code with the library's Montgomery arithmetic.
private enum Schoolbook {
    /// The group prime p.
    static let prime: [UInt64] = limbs(bigEndian: DiffieHellmanGroup14.primeBytes)

    /// Up to 256 big-endian bytes as limbs (not reduced).
    static func limbs(bigEndian bytes: [UInt8]) -> [UInt64] {
        var limbs = [UInt64](repeating: 0, count: limbCount)
        for (position, byte) in bytes.reversed().enumerated() {
            limbs[position / 8] |= UInt64(byte) << (8 * UInt64(position % 8))
        }
        return limbs
    }

    /// 256 big-endian bytes of limbs.
    static func bigEndian(_ limbs: [UInt64]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 256)
        for position in 0..<256 {
            bytes[255 - position] = UInt8(truncatingIfNeeded: limbs[position / 8] >> (8 * UInt64(position % 8)))
        }
        return bytes
    }

    /// a >= b.
    static func isAtLeast(_ a: UnsafePointer<UInt64>, _ b: UnsafePointer<UInt64>) -> Bool {
        for index in stride(from: limbCount - 1, through: 0, by: -1) where a[index] != b[index] {
            return a[index] > b[index]
        }
        return true
    }

    /// a -= b modulo 2^2048.
    static func subtract(_ a: UnsafeMutablePointer<UInt64>, _ b: UnsafePointer<UInt64>) {
        var borrow = false
        for index in 0..<limbCount {
            let (first, borrowOne) = a[index].subtractingReportingOverflow(b[index])
            let (second, borrowTwo) = first.subtractingReportingOverflow(borrow ? 1 : 0)
            a[index] = second
            borrow = borrowOne || borrowTwo
        }
    }

    /// a = (a + b) mod p, for a, b < p.
    static func addModPrime(_ a: UnsafeMutablePointer<UInt64>, _ b: UnsafePointer<UInt64>, _ p: UnsafePointer<UInt64>) {
        var carry = false
        for index in 0..<limbCount {
            let (first, carryOne) = a[index].addingReportingOverflow(b[index])
            let (second, carryTwo) = first.addingReportingOverflow(carry ? 1 : 0)
            a[index] = second
            carry = carryOne || carryTwo
        }
        // The true sum is carry·2^2048 + a < 2p: one subtraction of p (wrapping) reduces it.
        if carry || isAtLeast(a, p) { subtract(a, p) }
    }

    /// (a · b) mod p by shift-and-add over b's bits, most significant first.
    static func multiply(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        var result = [UInt64](repeating: 0, count: limbCount)
        var doubled = [UInt64](repeating: 0, count: limbCount)
        prime.withUnsafeBufferPointer { p in
            a.withUnsafeBufferPointer { a in
                result.withUnsafeMutableBufferPointer { r in
                    doubled.withUnsafeMutableBufferPointer { d in
                        for bit in stride(from: 2047, through: 0, by: -1) {
                            d.baseAddress!.update(from: r.baseAddress!, count: limbCount)
                            addModPrime(r.baseAddress!, d.baseAddress!, p.baseAddress!)
                            if (b[bit / 64] >> UInt64(bit % 64)) & 1 == 1 {
                                addModPrime(r.baseAddress!, a.baseAddress!, p.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    /// base^exponent mod p (base < p), square-and-multiply over the big-endian exponent bytes.
    static func power(_ base: [UInt64], _ exponent: [UInt8]) -> [UInt64] {
        var result = [UInt64](repeating: 0, count: limbCount)
        result[0] = 1
        for byte in exponent {
            for bit in stride(from: 7, through: 0, by: -1) {
                result = multiply(result, result)
                if (byte >> UInt8(bit)) & 1 == 1 { result = multiply(result, base) }
            }
        }
        return result
    }
}

/// Input layout: 1 byte of options (bits 0-4: exponent length 0...8 (mod 9); bit 5: a
/// 32-byte exponent instead, the length of the library's precomputed-comb path; bit 6: base 2;
/// bit 7: require forward secrecy), then the exponent, then up to 256 base bytes (big-endian;
/// a 256-byte base whose first byte has its high bit set is mostly overwritten with p's
/// leading bytes, so values just above and below p are common).
///
/// The schoolbook reference costs about a millisecond per multiplication, so it checks
/// exponents of up to 64 bits (all of the library's window and reduction code runs for any
/// length). A 32-byte exponent is checked inside the library only: the comb behind
/// `publicValue()` against the general fixed-window `modPow(2, x)`.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzedInput(inputBytes(data, count))
    let options = input.byte()
    let combLength = options & 32 != 0
    let exponent = input.take(combLength ? 32 : Int(options & 31) % 9)
    var base = input.take(256)
    if options & 64 != 0 { base = [2] }
    let requireForwardSecrecy = options & 128 != 0
    if base.count == 256 && base[0] & 0x80 != 0 {
        let prime = DiffieHellmanGroup14.primeBytes
        let keep = 4 + Int(base[1]) % 250
        base = Array(prime[..<(256 - keep)]) + base[(256 - keep)...]
    }

    if combLength {
        guard exponent.count == 32 else { return 0 }
        let privateExponent = DHPrivateExponent(bigEndianBytes: exponent)
        let publicValue = privateExponent.publicValue()
        let general = DiffieHellmanGroup14.modPow(base: [2], exponent: exponent)
        if publicValue != general {
            fuzzFailure("comb publicValue differs from modPow(2, x): exponent \(hex(exponent))")
        }
        if privateExponent.publicValue(backend: selected) != general
            || DiffieHellmanGroup14.modPow(base: [2], exponent: exponent, backend: selected) != general {
            fuzzFailure("selected backend's 2^x differs from the portable one: exponent \(hex(exponent))")
        }
        return 0
    }

    var reducedBase = Schoolbook.limbs(bigEndian: base)
    reducedBase.withUnsafeMutableBufferPointer { b in
        Schoolbook.prime.withUnsafeBufferPointer { p in
            if Schoolbook.isAtLeast(b.baseAddress!, p.baseAddress!) { Schoolbook.subtract(b.baseAddress!, p.baseAddress!) }
        }
    }
    let expected = Schoolbook.bigEndian(Schoolbook.power(reducedBase, exponent))
    let actual = DiffieHellmanGroup14.modPow(base: base, exponent: exponent)
    if actual != expected {
        fuzzFailure("modPow differs: base \(hex(base)) exponent \(hex(exponent)) got \(hex(actual)) expected \(hex(expected))")
    }
    if DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: selected) != expected {
        fuzzFailure("modPow (selected backend) differs: base \(hex(base)) exponent \(hex(exponent))")
    }
    guard !exponent.isEmpty else { return 0 }

    let privateExponent = DHPrivateExponent(bigEndianBytes: exponent)
    // The base-2 fast paths (the comb for 32-byte exponents, bit by bit for other lengths).
    let publicValue = privateExponent.publicValue()
    let twoToTheExponent = base == [2] ? expected : DiffieHellmanGroup14.modPow(base: [2], exponent: exponent)
    if publicValue != twoToTheExponent || privateExponent.publicValue(backend: selected) != twoToTheExponent {
        fuzzFailure("publicValue differs from modPow(2, x): exponent \(hex(exponent)) got \(hex(publicValue))")
    }

    // The peer-value checks against their definition, then the shared secret.
    let peer = [UInt8](repeating: 0, count: 256 - base.count) + base
    let peerLimbs = Schoolbook.limbs(bigEndian: peer)
    var primeMinusOne = Schoolbook.prime
    primeMinusOne[0] -= 1
    var one = [UInt64](repeating: 0, count: limbCount)
    one[0] = 1
    let notBelowPrime = peerLimbs.withUnsafeBufferPointer { y in
        Schoolbook.prime.withUnsafeBufferPointer { Schoolbook.isAtLeast(y.baseAddress!, $0.baseAddress!) }
    }
    let shouldRefuse = notBelowPrime || peerLimbs.allSatisfy { $0 == 0 } || peerLimbs == primeMinusOne
        || (requireForwardSecrecy && peerLimbs == one)
    do {
        let secret = try privateExponent.sharedSecret(peerPublicValue: peer, requireForwardSecrecy: requireForwardSecrecy)
        if shouldRefuse { fuzzFailure("sharedSecret accepted a bad peer value \(hex(peer))") }
        if secret != Schoolbook.bigEndian(Schoolbook.power(peerLimbs, exponent)) {
            fuzzFailure("sharedSecret differs: peer \(hex(peer)) exponent \(hex(exponent))")
        }
        let selectedSecret = try privateExponent.sharedSecret(peerPublicValue: peer, requireForwardSecrecy: requireForwardSecrecy,
                                                              backend: selected)
        if selectedSecret != secret {
            fuzzFailure("sharedSecret (selected backend) differs: peer \(hex(peer)) exponent \(hex(exponent))")
        }
    } catch {
        if !shouldRefuse { fuzzFailure("sharedSecret refused a good peer value \(hex(peer)): \(error)") }
    }
    // A value of the wrong length is always refused.
    if (try? privateExponent.sharedSecret(peerPublicValue: Array(peer.dropFirst()), requireForwardSecrecy: false)) != nil {
        fuzzFailure("sharedSecret accepted a 255-byte value")
    }
    return 0
}

/// The executable's entry point (SwiftPM links `diff_modexp_main` as `main`).
@_cdecl("diff_modexp_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
