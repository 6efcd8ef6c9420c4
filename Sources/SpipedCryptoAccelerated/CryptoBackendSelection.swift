import SpipedCrypto

#if canImport(Glibc)
import Glibc
#endif

extension String {
    /// "SHA-NI x4" → "sha-ni-x4", "AVX-512 x16" → "avx512-x16": an engine's name as
    /// SPIPED_CRYPTO_ENGINE takes it.
    fileprivate func replacingSpaces() -> String {
        let dashed = split(separator: " ").joined(separator: "-")
        return dashed.hasPrefix("avx-512") ? "avx512" + dashed.dropFirst(7) : dashed
    }
}

/// Chooses the fastest backend this CPU runs correctly: the one dispatch point of the library.
///
/// Per primitive (SHA-256, AES-256, DH), every engine whose CPU features are present *and*
/// whose known-answer self-test passes is a candidate; the fastest in a short start-up
/// measurement is used (`EngineChoice`). Environment:
/// - `SPIPED_FORCE_PORTABLE=1` forces the portable code for everything;
/// - `SPIPED_CRYPTO_ENGINE=NAME[,PRIMITIVE=NAME...]` forces named engines (for tests and
///   benchmarks), e.g. `mulx`, `dh=portable`, `sha256=sha-ni,aes256=aes-ni`. An engine that
///   cannot run here is not used; `problems` says so.
public enum CryptoBackendSelection {
    /// The backend this process uses (chosen once, on first use).
    public static var best: CryptoBackend { choice.backend }

    /// What `best` uses for each primitive, e.g. "SHA-256: SHA-NI, AES-256: AES-NI+VAES, DH: mulx".
    public static var summary: String { choice.summary }

    /// Every engine of every primitive: usable or why not, its start-up rate, which is chosen.
    public static var reports: [CryptoEngineReport] { choice.reports }

    /// Problems with `SPIPED_CRYPTO_ENGINE` (unknown or unusable engines), one sentence each.
    public static var problems: [String] { choice.problems }

    /// A backend made only of hardware primitives, when the CPU supports all of them and they
    /// pass their self-tests; nil otherwise. Tests and benchmarks use it to compare backends.
    public static var hardwareIfAvailable: CryptoBackend? { hardwareOnly }

    /// One backend per usable engine of `primitive`: the engine in place of the portable code
    /// for that primitive, everything else portable (benchmarks run each engine on its own).
    public static func engineVariants(of primitive: CryptoPrimitive) -> [(name: String, backend: CryptoBackend)] {
        candidates.filter { $0.primitive == primitive && $0.unusableReason == nil }.map { engine in
            var parts = BackendParts.portable
            engine.install(&parts)
            return (engine.name, parts.backend(allPortable: engine.name == "portable"))
        }
    }

    // MARK: - Selection (computed once; Swift initialises static lets thread-safely)

    private struct Choice: Sendable {
        var backend: CryptoBackend
        var summary: String
        var reports: [CryptoEngineReport]
        var problems: [String]
    }

    /// The SHA-NI one- and two-stream compression functions, when supported and self-tested.
    private static let verifiedSHA256: SHA256Functions? = {
        let hardware = SHA256Functions(compress: { SHA256Hardware.compress($0, $1, $2) },
                                       compress2: { SHA256Hardware.compress2($0, $1, $2, $3, $4) })
        return SHA256Hardware.isSupported && SelfTest.sha256(hardware) ? hardware : nil
    }()

    /// The VAES (256-bit CTR) engine, when supported and self-tested.
    private static let verifiedVectorAES: AES256Engine? =
        AES256Hardware.isVectorAESSupported && SelfTest.aes256(AES256Hardware.vectorEngine) ? AES256Hardware.vectorEngine : nil

    /// The 128-bit AES-NI engine, when supported and self-tested.
    private static let verifiedAESNI: AES256Engine? =
        AES256Hardware.isSupported && SelfTest.aes256(AES256Hardware.engine) ? AES256Hardware.engine : nil

    /// The fastest hardware AES engine (VAES before AES-NI), for `hardwareIfAvailable`.
    private static var verifiedAES256: AES256Engine? { verifiedVectorAES ?? verifiedAESNI }

    /// The BMI2 (mulx) engine, when supported and self-tested.
    private static let verifiedMulx: Montgomery2048Engine? =
        Montgomery2048Hardware.isSupported && SelfTest.montgomery2048(Montgomery2048Hardware.engine) ? Montgomery2048Hardware.engine : nil

    /// The hardware DH engine for `hardwareIfAvailable`: IFMA where verified, else mulx.
    private static var verifiedMontgomery2048: Montgomery2048Engine? { verifiedMontgomery2048IFMA ?? verifiedMulx }

    // BEGIN IFMA engine (issue 15)
    /// The AVX-512 IFMA engine, when the CPU and OS support it and it passes its self-test.
    static let verifiedMontgomery2048IFMA: Montgomery2048Engine? =
        Montgomery2048IFMAHardware.isSupported && SelfTest.montgomery2048(Montgomery2048IFMAHardware.engine)
            ? Montgomery2048IFMAHardware.engine : nil
    // END IFMA engine

    // MARK: Multi-stream SHA-256 (issue 15) — begin
    /// The multi-stream SHA-256 engines that the CPU supports and that pass their self-test
    /// (SHA-NI x4 first: on AMD Zen 4 it is 1.2x the two-stream code per core, the AVX-512
    /// 16-lane code slower than SHA-NI x2; the start-up measurement decides per CPU).
    static let verifiedSHA256MultiStream: [SHA256MultiStreamEngine] =
        SHA256MultiStream.all.filter { SHA256MultiStream.passesSelfTest($0) }

    /// The multi-stream engine `hardwareIfAvailable` uses: the first verified one.
    private static var chosenSHA256MultiStream: SHA256MultiStreamEngine? { verifiedSHA256MultiStream.first }
    // MARK: Multi-stream SHA-256 (issue 15) — end

    private static let hardwareOnly: CryptoBackend? = {
        guard let sha = verifiedSHA256, let aes = verifiedAES256, let montgomery = verifiedMontgomery2048 else { return nil }
        let many = chosenSHA256MultiStream
        return CryptoBackend(kind: .hardware, sha256Compress: sha.compress, sha256Compress2: sha.compress2,
                             sha256CompressMany: many?.compress, sha256Lanes: many?.lanes ?? 0,
                             aes256: aes, montgomery2048: montgomery)
    }()

    /// Why a hardware engine cannot be used: nil when it can.
    private static func reason(supported: Bool, verified: Bool, feature: String) -> String? {
        if !supported { return "the CPU or OS lacks \(feature)" }
        return verified ? nil : "its self-test failed"
    }

    /// Every engine this library has, with its verdict for this CPU.
    private static let candidates: [EngineCandidate] = {
        let portable = CryptoBackend.portable
        let list: [EngineCandidate] = [
            EngineCandidate(primitive: .sha256, name: "portable", summaryName: "portable", unusableReason: nil) {
                $0.sha256Compress = portable.sha256Compress
                $0.sha256Compress2 = portable.sha256Compress2
                $0.sha256CompressMany = nil
                $0.sha256Lanes = 0
            },
            EngineCandidate(primitive: .sha256, name: "sha-ni", summaryName: "SHA-NI",
                            unusableReason: reason(supported: SHA256Hardware.isSupported, verified: verifiedSHA256 != nil,
                                                   feature: "SHA-NI")) {
                if let sha = verifiedSHA256 {
                    $0.sha256Compress = sha.compress
                    $0.sha256Compress2 = sha.compress2
                }
                $0.sha256CompressMany = nil
                $0.sha256Lanes = 0
            },
            // Multi-stream engines for packet batches: one- and two-stream SHA-NI plus the wider
            // function (the AVX-512 one with portable single streams where SHA-NI is missing).
        ] + SHA256MultiStream.all.map { engine in
            let verified = verifiedSHA256MultiStream.contains { $0.name == engine.name }
            return EngineCandidate(primitive: .sha256, name: engine.name.lowercased().replacingSpaces(),
                                   summaryName: (verifiedSHA256 == nil ? "" : "SHA-NI, batches ") + engine.name,
                                   unusableReason: reason(supported: engine.isSupported, verified: verified,
                                                          feature: engine.lanes == 4 ? "SHA-NI" : "AVX-512 F/BW/VL")) {
                guard verified else { return }
                if let sha = verifiedSHA256 {
                    $0.sha256Compress = sha.compress
                    $0.sha256Compress2 = sha.compress2
                }
                $0.sha256CompressMany = engine.compress
                $0.sha256Lanes = engine.lanes
            }
        } + [
            EngineCandidate(primitive: .aes256, name: "portable", summaryName: "portable (bitsliced)", unusableReason: nil) {
                $0.aes256 = portable.aes256
            },
            EngineCandidate(primitive: .aes256, name: "aes-ni", summaryName: "AES-NI",
                            unusableReason: reason(supported: AES256Hardware.isSupported, verified: verifiedAESNI != nil,
                                                   feature: "AES-NI, SSSE3 and SSE4.1")) {
                if let engine = verifiedAESNI { $0.aes256 = engine }
            },
            EngineCandidate(primitive: .aes256, name: "vaes", summaryName: "AES-NI+VAES",
                            unusableReason: reason(supported: AES256Hardware.isVectorAESSupported, verified: verifiedVectorAES != nil,
                                                   feature: "VAES and AVX2")) {
                if let engine = verifiedVectorAES { $0.aes256 = engine }
            },
            EngineCandidate(primitive: .diffieHellman, name: "portable", summaryName: "portable", unusableReason: nil) {
                $0.montgomery2048 = nil
            },
            EngineCandidate(primitive: .diffieHellman, name: "mulx", summaryName: "mulx",
                            unusableReason: reason(supported: Montgomery2048Hardware.isSupported, verified: verifiedMulx != nil,
                                                   feature: "BMI2")) {
                $0.montgomery2048 = verifiedMulx
            },
            EngineCandidate(primitive: .diffieHellman, name: "ifma", summaryName: "ifma",
                            unusableReason: reason(supported: Montgomery2048IFMAHardware.isSupported,
                                                   verified: verifiedMontgomery2048IFMA != nil, feature: "AVX-512 F/IFMA/VL")) {
                $0.montgomery2048 = verifiedMontgomery2048IFMA
            },
        ]
        return list
    }()

    private static let choice: Choice = {
        if forcedPortable() {
            let portable = CryptoBackend.portable
            let reports = candidates.map {
                CryptoEngineReport(primitive: $0.primitive, name: $0.name, unusableReason: $0.unusableReason,
                                   measuredRate: nil, isChosen: $0.name == "portable")
            }
            return Choice(backend: portable, summary: "SHA-256: portable, AES-256: portable, DH: portable (SPIPED_FORCE_PORTABLE)",
                          reports: reports, problems: [])
        }
        var forced: [CryptoPrimitive: String] = [:]
        var problems: [String] = []
        if let value = getenv("SPIPED_CRYPTO_ENGINE") {
            (forced, problems) = EngineChoice.forcedEngines(String(cString: value), candidates: candidates)
        }
        let outcome = EngineChoice.choose(candidates, forced: forced, problems: problems)
        let summary = outcome.summary + (forced.isEmpty ? "" : " (SPIPED_CRYPTO_ENGINE)")
        return Choice(backend: outcome.parts.backend(allPortable: outcome.allPortable), summary: summary,
                      reports: outcome.reports, problems: outcome.problems)
    }()

    /// The start-up report for logs: each primitive's engines with their measured rates, the
    /// chosen one marked, e.g. "SHA-256: sha-ni* 2470 MB/s, portable 292 MB/s; ...".
    public static var reportLine: String {
        CryptoPrimitive.allCases.map { primitive in
            let items = reports.filter { $0.primitive == primitive }.map { report -> String in
                var text = report.name + (report.isChosen ? "*" : "")
                if let rate = report.measuredRate {
                    text += " \(Int(rate.rounded())) \(primitive.rateUnit)"
                } else if let reason = report.unusableReason {
                    text += " (unusable: \(reason))"
                }
                return text
            }
            return "\(primitive.displayName): " + items.joined(separator: ", ")
        }.joined(separator: "; ")
    }

    /// True when `SPIPED_FORCE_PORTABLE` is set to anything but empty or `0`.
    private static func forcedPortable() -> Bool {
        guard let value = getenv("SPIPED_FORCE_PORTABLE") else { return false }
        let text = String(cString: value)
        return !text.isEmpty && text != "0"
    }
}

/// A SHA-256 implementation's one- and two-stream compression functions (see `CryptoBackend`).
struct SHA256Functions: Sendable {
    /// One stream: `CryptoBackend.sha256Compress`.
    let compress: CryptoBackend.SHA256CompressFunction
    /// Two streams: `CryptoBackend.sha256Compress2`.
    let compress2: CryptoBackend.SHA256Compress2Function
}

/// Known-answer self-tests run before a hardware primitive is trusted.
enum SelfTest {
    /// FIPS 180-4 examples: SHA-256("abc") and the two-block "abcdbcdecdefdefg…nopq" message,
    /// then agreement with the portable code on 1000 pseudo-random bytes. The two-stream
    /// function hashes the two examples side by side, and two 1000-byte samples.
    static func sha256(_ functions: SHA256Functions) -> Bool {
        let candidate = CryptoBackend(kind: .hardware, sha256Compress: functions.compress,
                                      sha256Compress2: functions.compress2, aes256: CryptoBackend.portable.aes256)
        let abcExpected = hexBytes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let twoBlocksExpected = hexBytes("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let abc = Array("abc".utf8)
        let twoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        let sample = pseudoRandomBytes(1000)
        let otherSample = Array(sample.reversed())
        guard SHA256.hash(abc, backend: candidate) == abcExpected,
              SHA256.hash(twoBlocks, backend: candidate) == twoBlocksExpected,
              SHA256.hash(sample, backend: candidate) == SHA256.hash(sample, backend: .portable)
        else { return false }
        return hashPair(abc, twoBlocks, backend: candidate) == (abcExpected, twoBlocksExpected)
            && hashPair(sample, otherSample, backend: candidate)
                == (SHA256.hash(sample, backend: .portable), SHA256.hash(otherSample, backend: .portable))
    }

    /// SHA-256 of two messages side by side (`SHA256.update`/`finalize` for two hashes).
    private static func hashPair(_ messageA: [UInt8], _ messageB: [UInt8], backend: CryptoBackend) -> ([UInt8], [UInt8]) {
        var hashA = SHA256(backend: backend), hashB = SHA256(backend: backend)
        var digestA = [UInt8](repeating: 0, count: SHA256.digestByteCount)
        var digestB = digestA
        messageA.withUnsafeBytes { bytesA in
            messageB.withUnsafeBytes { bytesB in SHA256.update(&hashA, bytesA, &hashB, bytesB) }
        }
        digestA.withUnsafeMutableBytes { outputA in
            digestB.withUnsafeMutableBytes { outputB in SHA256.finalize(&hashA, into: outputA, &hashB, into: outputB) }
        }
        return (digestA, digestB)
    }

    /// FIPS 197 appendix C.3 (AES-256 single block), then CTR agreement with the portable code
    /// on a 1028-byte spiped packet body and on 300 bytes (16 + 2 + 1 partial blocks: every
    /// stage of the VAES loop), each from counter 0 and from a counter that carries across
    /// 64 bits inside the call.
    static func aes256(_ engine: AES256Engine) -> Bool {
        let candidate = CryptoBackend(kind: .hardware, sha256Compress: CryptoBackend.portable.sha256Compress, aes256: engine)
        guard let key = try? AES256Key(key: hexBytes("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"), backend: candidate),
              let reference = try? AES256Key(key: hexBytes("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"), backend: .portable)
        else { return false }
        var block = hexBytes("00112233445566778899aabbccddeeff")
        block.withUnsafeMutableBytes { key.encryptBlock($0.baseAddress!, $0.baseAddress!) }
        guard block == hexBytes("8ea2b7ca516745bfeafc49904b496089") else { return false }

        let carryCounter: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 7] + [UInt8](repeating: 0xff, count: 7) + [0xf0]
        for length in [1028, 300] {
            let input = pseudoRandomBytes(length)
            var fromCandidate = [UInt8](repeating: 0, count: input.count)
            var fromReference = fromCandidate
            for counter in [[UInt8](repeating: 0, count: 16), carryCounter] {
                input.withUnsafeBytes { source in
                    fromCandidate.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
                    fromReference.withUnsafeMutableBytes { reference.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
                }
                guard fromCandidate == fromReference else { return false }
            }
        }
        return true
    }

    /// Group-14 Montgomery arithmetic: 2^x mod p and y^x mod p through the candidate engine
    /// against a Python-computed answer (`Vectors/DH/group14-modexp.txt`, AGREEMENT record 1:
    /// YA = 2^XA mod p, SECRET = YB^XA mod p), then single multiplications and squarings against
    /// the portable code on pseudo-random values and on the edge values 0, 1 and p - 1.
    static func montgomery2048(_ engine: Montgomery2048Engine) -> Bool {
        let candidate = CryptoBackend(kind: .hardware, sha256Compress: CryptoBackend.portable.sha256Compress,
                                      aes256: CryptoBackend.portable.aes256, montgomery2048: engine)
        let exponent = DHPrivateExponent(bigEndianBytes: hexBytes(montgomeryExponentHex))
        guard exponent.publicValue(backend: candidate) == hexBytes(montgomeryPublicValueHex),
              (try? exponent.sharedSecret(peerPublicValue: hexBytes(montgomeryPeerValueHex), requireForwardSecrecy: true,
                                          backend: candidate)) == hexBytes(montgomerySecretHex)
        else { return false }
        // BEGIN IFMA engine (issue 15): an engine's own exponentiation against the portable
        // ladder, on pseudo-random bases (one above p) and exponents of 0, 1, 31 and 33 bytes.
        if engine.power != nil {
            let sample = pseudoRandomBytes(4 * 256 + 33)
            for (index, length) in [0, 1, 31, 33].enumerated() {
                var base = Array(sample[(index * 256)..<(index * 256 + 256)])
                if index == 3 { base[0] = 0xFF }
                let exponent = Array(sample[(4 * 256)..<(4 * 256 + length)])
                guard DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: candidate)
                    == DiffieHellmanGroup14.modPow(base: base, exponent: exponent, backend: .portable) else { return false }
            }
        }
        // END IFMA engine

        let limbCount = 32
        let buffer = UnsafeMutablePointer<UInt64>.allocate(capacity: 4 * limbCount + 2 * Montgomery2048Engine.scratchLimbCount)
        defer { buffer.deallocate() }
        let a = buffer, b = buffer + limbCount, fromCandidate = buffer + 2 * limbCount, fromReference = buffer + 3 * limbCount
        let scratch = buffer + 4 * limbCount, referenceScratch = scratch + Montgomery2048Engine.scratchLimbCount
        let p = Montgomery2048Engine.modulusLimbs
        var pMinusOne = p
        pMinusOne[0] -= 1
        let random = pseudoRandomBytes(8 * limbCount * 8)
        var operands: [[UInt64]] = [[UInt64](repeating: 0, count: limbCount), [1] + [UInt64](repeating: 0, count: limbCount - 1), pMinusOne]
        for index in 0..<8 {
            var limbs = (0..<limbCount).map { limb in
                (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(random[(index * limbCount + limb) * 8 + $1]) }
            }
            limbs[limbCount - 1] >>= 1 // below 2^2047 < p
            operands.append(limbs)
        }
        return p.withUnsafeBufferPointer { modulus in
            for x in operands {
                for y in operands {
                    a.update(from: x, count: limbCount)
                    b.update(from: y, count: limbCount)
                    engine.multiply(fromCandidate, a, b, modulus.baseAddress!, scratch)
                    Montgomery2048Engine.portable.multiply(fromReference, a, b, modulus.baseAddress!, referenceScratch)
                    guard (0..<limbCount).allSatisfy({ fromCandidate[$0] == fromReference[$0] }) else { return false }
                }
                a.update(from: x, count: limbCount)
                engine.square(fromCandidate, a, modulus.baseAddress!, scratch)
                Montgomery2048Engine.portable.square(fromReference, a, modulus.baseAddress!, referenceScratch)
                guard (0..<limbCount).allSatisfy({ fromCandidate[$0] == fromReference[$0] }) else { return false }
            }
            return true
        }
    }

    /// AGREEMENT record 1 of `Vectors/DH/group14-modexp.txt` (computed by Python's pow).
    private static let montgomeryExponentHex =
        "D8812231B7E7ED82ED1125BD787B5B091FA74971C9E983EC769DAF4E6C7AE9C9"
    private static let montgomeryPublicValueHex =
        "88A156A136F922BC8D3F83CF1875CAB4B097D2811FE9BDA0577B920AE5D23740DF267646384D09A491A23C39D37E32F3B1C6D12BA99423FD0EDA4D8E5BAE20FD"
        + "72D264F048B57B82A1BE600C535C4B76CABEB3DA06813F6615318D91C77B6A4938FDC8062834AD69F4C07EC0BEA5A3EBFE220F701F61A29890F6382B93BCD104"
        + "F23518FD5DDA0D6B761BD29391E6A2546267379B42A937BED1BF040034D666FDC29AE506A116F32652F720A7844CF10C77C45E7D672E216F7435834BD1AC542E"
        + "616578981C2DABECD972F2B400562608DD49706B6FF0937D27D5529018FE2B0CE1CAC161EAF09DB7987D3295429F0074772B627A5E7741785EE932F4C396967F"
    private static let montgomeryPeerValueHex =
        "BC9D22E7CEF6038F90993EF033E9B4121DE9BDA5441D55CD3606226C9324169A1AA2977C5400BA66F66503A2891D22ABC2C291981F22C3F8B7BD1F3F4206E3CB"
        + "7CD638267AF3315A4378502440793471D4DABE0637E76FEF8E17C71E265EAAF40D8CF878F86314395A1F0983D39B72B19CF9A3A39319237CD519C71A4221665F"
        + "FE685D0558874ABE1290812EB8355789852F0B44A610FC18F97FC65211DD6C68FFE5B7FD75DDCCA920A27A56D0BDBA2793E62E3CCE5FA1BD5D8420BCA0D4A4FD"
        + "04C1C88B1FC895F544007A5DF285F8222FCCEDADCC51EAFFDBEA15FBA61559C1F72BA0F722694260D7C700017254075714945224C4511D24FD4792CBAAED4D61"
    private static let montgomerySecretHex =
        "6C1E9DFA342B65004D8CCDF1F5C53A1A2094858FF0C20FBFB82BB2DA899F6EC933C00783C8B86FCA6D0BC7A0E2A410207D31419ED5AD976F47F6FD1967E53E5C"
        + "7538DF36B221B7F1E669DE9C77F18913669506BADAB01DC5B3481CADA680E48A9624748E72C029090E971C9F7A77B30F5DED626DA0F0AD9D6D0E8810675C87C6"
        + "1E281A432BA9E2E86D9481F8E69AF90EEF99F414A1DA1CA098BE7B049BC06223F3C79E78B7EC422DE6ADF2648741ED85C87D6D06BDBC4323EB410A666C9229B8"
        + "4BA7EF45AEA2A35DBC613F48A427334A3A3E33E7D1F658BC7AB1670DD5E69BFCAD89A5C7CB0196AF7F8EB097D1A98812B33EB7A182AC6D8323705518DFC4A42A"

    /// Deterministic filler (xorshift), so the self-test input is the same on every run.
    static func pseudoRandomBytes(_ count: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    /// Hex text to bytes (self-test constants only; input is trusted).
    static func hexBytes(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            bytes.append(UInt8(nibble(high) << 4 | nibble(low)))
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8 {
        c <= 57 ? c - 48 : (c | 0x20) - 87
    }
}
