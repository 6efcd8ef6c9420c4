import SpipedCrypto

#if canImport(Glibc)
import Glibc
#endif

/// Chooses the fastest backend this CPU runs correctly: the one dispatch point of the library.
///
/// A hardware primitive is used only when the CPU reports its feature *and* its known-answer
/// self-test passes; otherwise that primitive falls back to the portable code. The environment
/// variable `SPIPED_FORCE_PORTABLE=1` forces the portable backend for everything.
public enum CryptoBackendSelection {
    /// The backend this process uses (chosen once, on first use).
    public static var best: CryptoBackend { choice.backend }

    /// What `best` uses for each primitive, e.g. "SHA-256: SHA-NI, AES-256: AES-NI+VAES".
    public static var summary: String { choice.summary }

    /// A backend made only of hardware primitives, when the CPU supports all of them and they
    /// pass their self-tests; nil otherwise. Tests and benchmarks use it to compare backends.
    public static var hardwareIfAvailable: CryptoBackend? { hardwareOnly }

    // MARK: - Selection (computed once; Swift initialises static lets thread-safely)

    private struct Choice: Sendable {
        var backend: CryptoBackend
        var summary: String
    }

    /// The SHA-NI one- and two-stream compression functions, when supported and self-tested.
    private static let verifiedSHA256: SHA256Functions? = {
        let hardware = SHA256Functions(compress: { SHA256Hardware.compress($0, $1, $2) },
                                       compress2: { SHA256Hardware.compress2($0, $1, $2, $3, $4) })
        return SHA256Hardware.isSupported && SelfTest.sha256(hardware) ? hardware : nil
    }()

    /// The fastest hardware AES engine that is supported and passes its self-test, with its
    /// name for `summary`: VAES (256-bit CTR) first, then the 128-bit AES-NI engine.
    private static let verifiedAES256: (engine: AES256Engine, name: String)? = {
        if AES256Hardware.isVectorAESSupported && SelfTest.aes256(AES256Hardware.vectorEngine) {
            return (AES256Hardware.vectorEngine, "AES-NI+VAES")
        }
        if AES256Hardware.isSupported && SelfTest.aes256(AES256Hardware.engine) {
            return (AES256Hardware.engine, "AES-NI")
        }
        return nil
    }()

    private static let hardwareOnly: CryptoBackend? = {
        guard let sha = verifiedSHA256, let aes = verifiedAES256 else { return nil }
        return CryptoBackend(kind: .hardware, sha256Compress: sha.compress, sha256Compress2: sha.compress2, aes256: aes.engine)
    }()

    private static let choice: Choice = {
        let portable = CryptoBackend.portable
        if forcedPortable() {
            return Choice(backend: portable, summary: "SHA-256: portable, AES-256: portable (SPIPED_FORCE_PORTABLE)")
        }
        let sha = verifiedSHA256
        let aes = verifiedAES256
        let summary = "SHA-256: \(sha == nil ? "portable" : "SHA-NI"), AES-256: \(aes?.name ?? "portable (bitsliced)")"
        if sha == nil && aes == nil { return Choice(backend: portable, summary: summary) }
        let backend = CryptoBackend(kind: .hardware,
                                    sha256Compress: sha?.compress ?? portable.sha256Compress,
                                    sha256Compress2: sha?.compress2 ?? portable.sha256Compress2,
                                    aes256: aes?.engine ?? portable.aes256)
        return Choice(backend: backend, summary: summary)
    }()

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
