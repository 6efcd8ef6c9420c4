import Foundation
import XCTest
@testable import SpipedCrypto
@testable import SpipedCryptoAccelerated

/// The AVX-512 IFMA Montgomery engine (issue 15): every DH vector (Python's pow) through it,
/// and random differential checks against the portable code, of its whole exponentiation
/// (`Montgomery2048Engine.power`) and of its multiply/square contract. Skipped, with a note,
/// on CPUs without AVX512F/IFMA/VL.
final class Montgomery2048IFMATests: XCTestCase {
    private let limbCount = 32

    /// The IFMA engine, or a skip when this CPU (or OS) cannot run it.
    private func ifmaEngine() throws -> Montgomery2048Engine {
        guard Montgomery2048IFMAHardware.isSupported else {
            print("note: Montgomery2048IFMATests skipped: this CPU or OS has no AVX-512 IFMA (avx512f, avx512ifma, avx512vl)")
            throw XCTSkip("this CPU or OS has no AVX-512 IFMA (avx512f, avx512ifma, avx512vl)")
        }
        return Montgomery2048IFMAHardware.engine
    }

    /// A backend whose only non-portable part is `engine`.
    private func backend(_ engine: Montgomery2048Engine) -> CryptoBackend {
        let portable = CryptoBackend.portable
        return CryptoBackend(kind: .hardware, sha256Compress: portable.sha256Compress, aes256: portable.aes256,
                             montgomery2048: engine)
    }

    /// The CPU flags the kernel reports (it hides AVX-512 flags when the OS does not save ZMM state).
    private func cpuFlags() throws -> Set<String> {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
    }

    func testEngineIsAvailableExactlyWithAVX512IFMA() throws {
        let flags = try cpuFlags()
        XCTAssertEqual(Montgomery2048IFMAHardware.isSupported,
                       flags.isSuperset(of: ["avx512f", "avx512ifma", "avx512vl"]))
        // Supported means it also passed its self-test (a wrong kernel would not be verified).
        XCTAssertEqual(CryptoBackendSelection.verifiedMontgomery2048IFMA != nil, Montgomery2048IFMAHardware.isSupported)
    }

    func testEngineHasItsOwnExponentiation() throws {
        XCTAssertNotNil(try ifmaEngine().power)
        XCTAssertEqual(try ifmaEngine().name, "ifma")
    }

    /// All MODEXP and AGREEMENT records of `Vectors/DH/group14-modexp.txt` through the IFMA
    /// engine: its exponentiation (modPow, sharedSecret) and, for base 2, the comb and
    /// square-and-double paths that run on its multiply/square contract.
    func testEveryDHVectorThroughIFMA() throws {
        let ifma = backend(try ifmaEngine())
        let records = try VectorFiles.records("DH/group14-modexp.txt")
        var two = [UInt8](repeating: 0, count: 256)
        two[255] = 2
        var checked = 0
        for (index, record) in records.enumerated() where record.section == "MODEXP" {
            let base = try record.bytes("BASE"), exponent = try record.bytes("EXPONENT")
            let expected = try record.bytes("RESULT")
            XCTAssertEqual(DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: ifma), expected, "record \(index)")
            if base == two {
                XCTAssertEqual(DHPrivateExponent(bigEndianBytes: exponent).publicValue(backend: ifma), expected,
                               "record \(index), base-2 path")
            }
            checked += 1
        }
        for record in records where record.section == "AGREEMENT" {
            let alice = DHPrivateExponent(bigEndianBytes: try record.bytes("XA"))
            XCTAssertEqual(alice.publicValue(backend: ifma), try record.bytes("YA"))
            XCTAssertEqual(try alice.sharedSecret(peerPublicValue: try record.bytes("YB"), requireForwardSecrecy: true, backend: ifma),
                           try record.bytes("SECRET"))
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 40)
    }

    /// Random bases (and the edge values 0, 1, p - 1, p, p + 1, 2^2048 - 1, short bases) with
    /// exponents of many lengths: the IFMA exponentiation against the portable ladder.
    func testRandomExponentiationsAgreeWithPortable() throws {
        let ifma = backend(try ifmaEngine())
        var generator = SystemRandomNumberGenerator()
        func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        let prime = DiffieHellmanGroup14.primeBytes
        var primeMinusOne = prime
        primeMinusOne[255] -= 1
        let primePlusOne = addOne(prime)
        var bases: [[UInt8]] = [[], [0], [1], [2], primeMinusOne, prime, primePlusOne, [UInt8](repeating: 0xFF, count: 256),
                                randomBytes(17)]
        for _ in 0..<8 { bases.append(randomBytes(256)) }
        let lengths = [0, 1, 2, 3, 8, 31, 32, 33, 64, 256]
        for (index, base) in bases.enumerated() {
            for length in lengths where (index + length) % 3 != 0 || length <= 33 {
                let exponent = randomBytes(length)
                XCTAssertEqual(DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: ifma),
                               DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: .portable),
                               "base \(index), exponent \(exponent)")
            }
        }
        // Exponents of all ones and all zeros (every window 15 or 0).
        for fill: UInt8 in [0x00, 0xFF] {
            let exponent = [UInt8](repeating: fill, count: 32), base = randomBytes(256)
            XCTAssertEqual(DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: ifma),
                           DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: .portable))
        }
    }

    /// The multiply/square contract (R = 2^2048, fully reduced, result may alias the inputs)
    /// against the portable engine on random values, 0, 1, p - 1, and a ≥ p (a < R is allowed).
    func testMultiplyAndSquareAgreeWithPortable() throws {
        let engine = try ifmaEngine()
        var generator = SystemRandomNumberGenerator()
        var pMinusOne = Montgomery2048Engine.modulusLimbs
        pMinusOne[0] -= 1
        var values: [[UInt64]] = [[UInt64](repeating: 0, count: limbCount), [1] + [UInt64](repeating: 0, count: limbCount - 1),
                                  pMinusOne]
        for _ in 0..<20 {
            var limbs = (0..<limbCount).map { _ in UInt64.random(in: 0...UInt64.max, using: &generator) }
            limbs[limbCount - 1] >>= 1 // below 2^2047 < p
            values.append(limbs)
        }
        let anyBelowR = [UInt64](repeating: .max, count: limbCount)
        let modulus = Montgomery2048Engine.modulusLimbs
        let scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * Montgomery2048Engine.scratchLimbCount)
        defer { scratch.deallocate() }
        let referenceScratch = scratch + Montgomery2048Engine.scratchLimbCount
        modulus.withUnsafeBufferPointer { p in
            let p = p.baseAddress!
            for (index, a) in values.enumerated() {
                for b in [values[(index * 5 + 1) % values.count], pMinusOne, a] {
                    for first in [a, anyBelowR] {
                        var fromIFMA = [UInt64](repeating: 0, count: limbCount), expected = fromIFMA
                        engine.multiply(&fromIFMA, first, b, p, scratch)
                        Montgomery2048Engine.portable.multiply(&expected, first, b, p, referenceScratch)
                        XCTAssertEqual(fromIFMA, expected, "multiply \(index)")
                    }
                }
                var square = [UInt64](repeating: 0, count: limbCount), expected = square
                engine.square(&square, a, p, scratch)
                Montgomery2048Engine.portable.square(&expected, a, p, referenceScratch)
                XCTAssertEqual(square, expected, "square \(index)")
                var inPlace = a
                inPlace.withUnsafeMutableBufferPointer { engine.square($0.baseAddress!, $0.baseAddress!, p, scratch) }
                XCTAssertEqual(inPlace, expected, "square in place \(index)")
                var product = a
                product.withUnsafeMutableBufferPointer { engine.multiply($0.baseAddress!, $0.baseAddress!, pMinusOne, p, scratch) }
                var reference = [UInt64](repeating: 0, count: limbCount)
                Montgomery2048Engine.portable.multiply(&reference, a, pMinusOne, p, referenceScratch)
                XCTAssertEqual(product, reference, "multiply in place \(index)")
            }
        }
    }

    /// A 256-byte big-endian number plus one.
    private func addOne(_ value: [UInt8]) -> [UInt8] {
        var result = value
        var index = result.count - 1
        while index >= 0 {
            let (sum, overflow) = result[index].addingReportingOverflow(1)
            result[index] = sum
            if !overflow { break }
            index -= 1
        }
        return result
    }
}
