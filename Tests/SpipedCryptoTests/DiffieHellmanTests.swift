import XCTest
@testable import SpipedCrypto
import SpipedCryptoAccelerated

/// Group-14 Diffie-Hellman against independent references: the prime from RFC 3526 (as shipped
/// in PyPI's cryptography_vectors) and exponentiations computed by Python's built-in `pow`
/// (`Vectors/DH/gen_modexp.py` wrote `Vectors/DH/group14-modexp.txt`).
final class DiffieHellmanTests: XCTestCase {
    /// The RFC 3526 2048-bit prime (COUNT = 1 in rfc3526.txt).
    private func referencePrime() throws -> [UInt8] {
        let records = try VectorFiles.records("DH/rfc3526.txt")
        let group14 = try XCTUnwrap(records.first { $0.fields["COUNT"] == "1" })
        XCTAssertEqual(group14.fields["G"], "2")
        return try group14.bytes("P")
    }

    private func modexpRecords() throws -> [VectorFiles.Record] {
        let records = try VectorFiles.records("DH/group14-modexp.txt").filter { $0.section == "MODEXP" }
        XCTAssertGreaterThanOrEqual(records.count, 40)
        return records
    }

    /// a - 1 or a + 1 for a 256-byte big-endian number (no wrap-around in the tests' uses).
    private func adding(_ delta: Int, to value: [UInt8]) -> [UInt8] {
        var result = value
        var carry = delta
        var index = result.count - 1
        while carry != 0 && index >= 0 {
            let sum = Int(result[index]) + carry
            result[index] = UInt8(truncatingIfNeeded: sum)
            carry = sum >> 8
            index -= 1
        }
        return result
    }

    private func bigEndianOne() -> [UInt8] {
        var one = [UInt8](repeating: 0, count: 256)
        one[255] = 1
        return one
    }

    func testPrimeMatchesRFC3526() throws {
        let prime = try referencePrime()
        XCTAssertEqual(prime.count, 256)
        XCTAssertEqual(DiffieHellmanGroup14.primeBytes, prime)
        XCTAssertEqual(DiffieHellmanGroup14.valueByteCount, 256)
    }

    func testModPowMatchesPythonPow() throws {
        for (index, record) in try modexpRecords().enumerated() {
            let base = try record.bytes("BASE"), exponent = try record.bytes("EXPONENT")
            let expected = try record.bytes("RESULT")
            XCTAssertEqual(DiffieHellmanGroup14.modPow(base: base, exponent: exponent), expected,
                           "record \(index): exponent \(record.fields["EXPONENT"]!)")
        }
    }

    func testModPowAcceptsShortBasesAndEmptyExponent() throws {
        // A base given in fewer bytes is the same number; an empty exponent means 0.
        let record = try XCTUnwrap(try modexpRecords().first { $0.fields["EXPONENT"]?.count == 64 })
        let base = try record.bytes("BASE")
        let trimmed = Array(base.drop(while: { $0 == 0 }))
        XCTAssertEqual(DiffieHellmanGroup14.modPow(base: trimmed, exponent: try record.bytes("EXPONENT")),
                       try record.bytes("RESULT"))
        XCTAssertEqual(DiffieHellmanGroup14.modPow(base: base, exponent: []), bigEndianOne())
    }

    func testPublicValueFastPathMatchesPythonPow() throws {
        // 32-byte exponents take the comb path, other lengths the square-and-double path.
        var checked = 0, combChecked = 0
        for (index, record) in try modexpRecords().enumerated() {
            var two = [UInt8](repeating: 0, count: 256)
            two[255] = 2
            guard try record.bytes("BASE") == two else { continue }
            let exponent = try record.bytes("EXPONENT")
            let privateExponent = DHPrivateExponent(bigEndianBytes: exponent)
            XCTAssertEqual(privateExponent.publicValue(), try record.bytes("RESULT"),
                           "record \(index): exponent \(record.fields["EXPONENT"]!)")
            checked += 1
            if exponent.count == Montgomery2048.combExponentByteCount { combChecked += 1 }
        }
        XCTAssertGreaterThanOrEqual(checked, 20)
        XCTAssertGreaterThanOrEqual(combChecked, 8)
        XCTAssertGreaterThanOrEqual(checked - combChecked, 8)
    }

    func testTwoPartyAgreementMatchesPythonPow() throws {
        let records = try VectorFiles.records("DH/group14-modexp.txt").filter { $0.section == "AGREEMENT" }
        XCTAssertGreaterThanOrEqual(records.count, 4)
        for record in records {
            let alice = DHPrivateExponent(bigEndianBytes: try record.bytes("XA"))
            let bob = DHPrivateExponent(bigEndianBytes: try record.bytes("XB"))
            let alicePublic = alice.publicValue(), bobPublic = bob.publicValue()
            XCTAssertEqual(alicePublic, try record.bytes("YA"))
            XCTAssertEqual(bobPublic, try record.bytes("YB"))
            for forwardSecrecy in [false, true] {
                let aliceSecret = try alice.sharedSecret(peerPublicValue: bobPublic, requireForwardSecrecy: forwardSecrecy)
                let bobSecret = try bob.sharedSecret(peerPublicValue: alicePublic, requireForwardSecrecy: forwardSecrecy)
                XCTAssertEqual(aliceSecret, bobSecret)
                XCTAssertEqual(aliceSecret, try record.bytes("SECRET"))
            }
        }
    }

    func testRandomExponentsAgree() throws {
        let alice = try DHPrivateExponent(), bob = try DHPrivateExponent()
        let alicePublic = alice.publicValue(), bobPublic = bob.publicValue()
        XCTAssertEqual(alicePublic.count, 256)
        XCTAssertNotEqual(alicePublic, bobPublic)
        XCTAssertNoThrow(try DiffieHellmanGroup14.validatePeerValue(alicePublic, requireForwardSecrecy: true))
        let aliceSecret = try alice.sharedSecret(peerPublicValue: bobPublic, requireForwardSecrecy: true)
        XCTAssertEqual(aliceSecret, try bob.sharedSecret(peerPublicValue: alicePublic, requireForwardSecrecy: true))
        XCTAssertEqual(aliceSecret.count, 256)
    }

    /// A peer running spiped -f sends y = 1 and uses 1 as the secret; without -g we agree.
    func testFastModePeerValueOneGivesOne() throws {
        let exponent = try DHPrivateExponent()
        XCTAssertEqual(try exponent.sharedSecret(peerPublicValue: bigEndianOne(), requireForwardSecrecy: false),
                       bigEndianOne())
    }

    func testValidationRefusesBadValues() throws {
        let prime = try referencePrime()
        let zero = [UInt8](repeating: 0, count: 256)
        let refused: [([UInt8], Bool, DHPublicValueProblem)] = [
            ([], false, .wrongLength),
            ([UInt8](repeating: 1, count: 255), false, .wrongLength),
            ([0] + adding(1, to: zero), false, .wrongLength),
            ([UInt8](repeating: 0, count: 257), false, .wrongLength),
            (prime, false, .notLessThanPrime),
            (adding(1, to: prime), false, .notLessThanPrime),
            (adding(12345, to: prime), true, .notLessThanPrime),
            ([UInt8](repeating: 0xFF, count: 256), false, .notLessThanPrime),
            (zero, false, .zero),
            (zero, true, .zero),
            (adding(-1, to: prime), false, .primeMinusOne),
            (adding(-1, to: prime), true, .primeMinusOne),
            (bigEndianOne(), true, .one),
        ]
        for (index, (value, forwardSecrecy, problem)) in refused.enumerated() {
            XCTAssertThrowsError(try DiffieHellmanGroup14.validatePeerValue(value, requireForwardSecrecy: forwardSecrecy),
                                 "case \(index)") { error in
                XCTAssertEqual(error as? CryptoError, .invalidPublicValue(problem), "case \(index)")
            }
            let exponent = DHPrivateExponent(bigEndianBytes: [0x12, 0x34])
            XCTAssertThrowsError(try exponent.sharedSecret(peerPublicValue: value, requireForwardSecrecy: forwardSecrecy),
                                 "case \(index)") { error in
                XCTAssertEqual(error as? CryptoError, .invalidPublicValue(problem), "case \(index)")
            }
        }
    }

    func testValidationAcceptsGoodValues() throws {
        let prime = try referencePrime()
        let accepted: [([UInt8], Bool)] = [
            (bigEndianOne(), false),
            (adding(1, to: bigEndianOne()), true),
            (adding(-2, to: prime), true),
            (adding(-2, to: prime), false),
            (DHPrivateExponent(bigEndianBytes: [0x01, 0x00]).publicValue(), true),
        ]
        for (index, (value, forwardSecrecy)) in accepted.enumerated() {
            XCTAssertNoThrow(try DiffieHellmanGroup14.validatePeerValue(value, requireForwardSecrecy: forwardSecrecy),
                             "case \(index)")
        }
    }

    /// The Montgomery constant R² mod p is derived at run time; check it against Python.
    func testMontgomeryConstantsAgainstPython() throws {
        let prime = try referencePrime()
        let script = """
        import sys
        p = int(sys.argv[1], 16)
        print(format(pow(2, 4096, p), '0512X'))
        print(format((1 << 2048) - p, '0512X'))
        """
        let output = try runPython(script, arguments: [prime.map { String(format: "%02X", $0) }.joined()])
        let lines = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2)
        var rSquared = [UInt8](repeating: 0, count: 256)
        Montgomery2048.rSquaredLimbs.withUnsafeBufferPointer { limbs in
            rSquared.withUnsafeMutableBytes { Montgomery2048.storeBigEndian(limbs.baseAddress!, into: $0) }
        }
        XCTAssertEqual(rSquared, try VectorFiles.hex(lines[0]))
        let workspace = Montgomery2048.Workspace()
        defer { workspace.release() }
        workspace.setMontgomeryOne(workspace.accumulator)
        var one = [UInt8](repeating: 0, count: 256)
        one.withUnsafeMutableBytes { Montgomery2048.storeBigEndian(workspace.accumulator, into: $0) }
        XCTAssertEqual(one, try VectorFiles.hex(lines[1]))
    }

    /// Random bases and exponents of many lengths against Python's pow, to cover carries the
    /// fixed vectors might miss (the inputs are random, Python is the reference).
    func testRandomModPowAgainstPython() throws {
        var generator = SystemRandomNumberGenerator()
        var lines: [String] = []
        var cases: [([UInt8], [UInt8])] = []
        for length in [1, 2, 7, 8, 9, 31, 32, 33, 64, 256] {
            let base = (0..<256).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let exponent = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            cases.append((base, exponent))
            lines.append(hexString(base) + " " + hexString(exponent))
        }
        // Edge bases: 0, p - 1, p (≡ 0) and 2^2048 - 1 (≥ p, reduced on entry), with random and
        // all-ones exponents.
        let prime = try referencePrime()
        for base in [[UInt8](repeating: 0, count: 256), adding(-1, to: prime), prime,
                     [UInt8](repeating: 0xFF, count: 256)] {
            for exponent in [(0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) },
                             [UInt8](repeating: 0xFF, count: 64)] {
                cases.append((base, exponent))
                lines.append(hexString(base) + " " + hexString(exponent))
            }
        }
        // Base 2 with 32-byte exponents: also checked through the comb in publicValue() below.
        var two = [UInt8](repeating: 0, count: 256)
        two[255] = 2
        for _ in 0..<6 {
            let exponent = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            cases.append((two, exponent))
            lines.append(hexString(two) + " " + hexString(exponent))
        }
        let script = """
        import sys
        p = int(sys.argv[1], 16)
        for line in sys.stdin.read().split('\\n'):
            if line:
                b, e = line.split()
                print(format(pow(int(b, 16), int(e, 16), p), '0512X'))
        """
        let output = try runPython(script, arguments: [hexString(try referencePrime())],
                                   input: lines.joined(separator: "\n"))
        let expected = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(expected.count, cases.count)
        for ((base, exponent), line) in zip(cases, expected) {
            XCTAssertEqual(DiffieHellmanGroup14.modPow(base: base, exponent: exponent), try VectorFiles.hex(line),
                           "exponent length \(exponent.count)")
            if base.last == 2 && base.dropLast().allSatisfy({ $0 == 0 }) {
                XCTAssertEqual(DHPrivateExponent(bigEndianBytes: exponent).publicValue(), try VectorFiles.hex(line))
            }
        }
    }

    // MARK: Every Montgomery engine

    /// Backends whose DH arithmetic differs: the built-in portable code (no engine), the
    /// portable code behind the engine interface, and the mulx engine when this CPU has BMI2.
    private func dhBackends() -> [(name: String, backend: CryptoBackend)] {
        let portable = CryptoBackend.portable
        var backends: [(name: String, backend: CryptoBackend)] = [
            ("built-in portable", portable),
            ("portable engine", CryptoBackend(kind: .portable, sha256Compress: portable.sha256Compress,
                                              aes256: portable.aes256, montgomery2048: .portable)),
        ]
        if Montgomery2048Hardware.isSupported {
            backends.append(("mulx", CryptoBackend(kind: .hardware, sha256Compress: portable.sha256Compress,
                                                   aes256: portable.aes256, montgomery2048: Montgomery2048Hardware.engine)))
        }
        return backends
    }

    /// The CPU flags the kernel reports (independent of our CPUID reading).
    private func cpuFlags() throws -> Set<String> {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
    }

    func testMulxEngineIsAvailableExactlyWithBMI2() throws {
        XCTAssertEqual(Montgomery2048Hardware.isSupported, try cpuFlags().contains("bmi2"))
    }

    /// All MODEXP and AGREEMENT vectors (Python's pow) through every engine: the window
    /// ladder (modPow, sharedSecret), the comb (32-byte exponents) and square-and-double.
    func testEveryEngineMatchesPythonPow() throws {
        let records = try VectorFiles.records("DH/group14-modexp.txt")
        var two = [UInt8](repeating: 0, count: 256)
        two[255] = 2
        for (name, backend) in dhBackends() {
            for (index, record) in records.enumerated() where record.section == "MODEXP" {
                let base = try record.bytes("BASE"), exponent = try record.bytes("EXPONENT")
                let expected = try record.bytes("RESULT")
                XCTAssertEqual(DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: backend), expected,
                               "\(name): record \(index)")
                if base == two {
                    XCTAssertEqual(DHPrivateExponent(bigEndianBytes: exponent).publicValue(backend: backend), expected,
                                   "\(name): record \(index), base-2 path")
                }
            }
            for record in records where record.section == "AGREEMENT" {
                let alice = DHPrivateExponent(bigEndianBytes: try record.bytes("XA"))
                XCTAssertEqual(alice.publicValue(backend: backend), try record.bytes("YA"), name)
                XCTAssertEqual(try alice.sharedSecret(peerPublicValue: try record.bytes("YB"), requireForwardSecrecy: true,
                                                      backend: backend),
                               try record.bytes("SECRET"), name)
            }
        }
    }

    /// Single Montgomery products and squares of every engine against Python:
    /// a·b·2^-2048 mod p, on random values below p and on 0, 1, p - 1 and 2^2047 - 1.
    func testEngineProductsAgainstPython() throws {
        let prime = try referencePrime()
        var generator = SystemRandomNumberGenerator()
        let limbCount = 32
        var pMinusOne = Montgomery2048Engine.modulusLimbs
        pMinusOne[0] -= 1
        var values: [[UInt64]] = [[UInt64](repeating: 0, count: limbCount), [1] + [UInt64](repeating: 0, count: limbCount - 1),
                                  pMinusOne, [UInt64](repeating: .max, count: limbCount - 1) + [UInt64.max >> 1]]
        for _ in 0..<12 {
            var limbs = (0..<limbCount).map { _ in UInt64.random(in: 0...UInt64.max, using: &generator) }
            limbs[limbCount - 1] >>= 1 // below 2^2047 < p
            values.append(limbs)
        }
        var pairs: [([UInt64], [UInt64])] = []
        for (index, a) in values.enumerated() {
            pairs.append((a, values[(index * 7 + 3) % values.count]))
            pairs.append((a, pMinusOne))
        }
        func hex(_ limbs: [UInt64]) -> String { limbs.reversed().map { String(format: "%016llX", $0) }.joined() }
        let script = """
        import sys
        p = int(sys.argv[1], 16)
        r_inverse = pow(2, -2048, p)
        for line in sys.stdin.read().split('\\n'):
            if line:
                a, b = (int(x, 16) for x in line.split())
                print(format(a * b * r_inverse % p, '0512X'), format(a * a * r_inverse % p, '0512X'))
        """
        let output = try runPython(script, arguments: [hexString(prime)],
                                   input: pairs.map { hex($0.0) + " " + hex($0.1) }.joined(separator: "\n"))
        let expected = output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(expected.count, pairs.count)
        var engines: [Montgomery2048Engine] = [.portable]
        if Montgomery2048Hardware.isSupported { engines.append(Montgomery2048Hardware.engine) }
        let modulus = Montgomery2048Engine.modulusLimbs
        let scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: Montgomery2048Engine.scratchLimbCount)
        defer { scratch.deallocate() }
        for engine in engines {
            for ((a, b), line) in zip(pairs, expected) {
                var product = [UInt64](repeating: 0, count: limbCount), square = product
                modulus.withUnsafeBufferPointer { p in
                    engine.multiply(&product, a, b, p.baseAddress!, scratch)
                    engine.square(&square, a, p.baseAddress!, scratch)
                }
                XCTAssertEqual(hex(product), line[0], "\(engine.name) multiply")
                XCTAssertEqual(hex(square), line[1], "\(engine.name) square")
                // The result may alias an input (the exponentiation squares in place).
                var inPlace = a
                modulus.withUnsafeBufferPointer { p in
                    inPlace.withUnsafeMutableBufferPointer { engine.square($0.baseAddress!, $0.baseAddress!, p.baseAddress!, scratch) }
                }
                XCTAssertEqual(hex(inPlace), line[1], "\(engine.name) square in place")
            }
        }
    }

    private func hexString(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02X", $0) }.joined()
    }

    private func runPython(_ script: String, arguments: [String], input: String = "") throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let stdinPipe = Pipe(), stdoutPipe = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        try process.run()
        stdinPipe.fileHandleForWriting.write(Data(input.utf8))
        try stdinPipe.fileHandleForWriting.close()
        let data = stdoutPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return String(decoding: data, as: UTF8.self)
    }
}
