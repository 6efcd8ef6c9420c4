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

    /// What `best` uses for each primitive, e.g. "SHA-256: SHA-NI, AES-256: AES-NI".
    public static var summary: String { choice.summary }

    /// A backend made only of hardware primitives, when the CPU supports all of them and they
    /// pass their self-tests; nil otherwise. Tests and benchmarks use it to compare backends.
    public static var hardwareIfAvailable: CryptoBackend? { hardwareOnly }

    // MARK: - Selection (computed once; Swift initialises static lets thread-safely)

    private struct Choice: Sendable {
        var backend: CryptoBackend
        var summary: String
    }

    private static let verifiedSHA256: (@Sendable (UnsafeMutablePointer<UInt32>, UnsafeRawPointer, Int) -> Void)? =
        SHA256Hardware.isSupported && SelfTest.sha256(SHA256Hardware.compress) ? SHA256Hardware.compress : nil

    private static let verifiedAES256: AES256Engine? =
        AES256Hardware.isSupported && SelfTest.aes256(AES256Hardware.engine) ? AES256Hardware.engine : nil

    private static let hardwareOnly: CryptoBackend? = {
        guard let sha = verifiedSHA256, let aes = verifiedAES256 else { return nil }
        return CryptoBackend(kind: .hardware, sha256Compress: sha, aes256: aes)
    }()

    private static let choice: Choice = {
        let portable = CryptoBackend.portable
        if forcedPortable() {
            return Choice(backend: portable, summary: "SHA-256: portable, AES-256: portable (SPIPED_FORCE_PORTABLE)")
        }
        let sha = verifiedSHA256
        let aes = verifiedAES256
        let summary = "SHA-256: \(sha == nil ? "portable" : "SHA-NI"), AES-256: \(aes == nil ? "portable (bitsliced)" : "AES-NI")"
        if sha == nil && aes == nil { return Choice(backend: portable, summary: summary) }
        let backend = CryptoBackend(kind: .hardware,
                                    sha256Compress: sha ?? portable.sha256Compress,
                                    aes256: aes ?? portable.aes256)
        return Choice(backend: backend, summary: summary)
    }()

    /// True when `SPIPED_FORCE_PORTABLE` is set to anything but empty or `0`.
    private static func forcedPortable() -> Bool {
        guard let value = getenv("SPIPED_FORCE_PORTABLE") else { return false }
        let text = String(cString: value)
        return !text.isEmpty && text != "0"
    }
}

/// Known-answer self-tests run before a hardware primitive is trusted.
enum SelfTest {
    /// FIPS 180-4 examples: SHA-256("abc") and the two-block "abcdbcdecdefdefg…nopq" message,
    /// then agreement with the portable code on 1000 pseudo-random bytes.
    static func sha256(_ compress: @escaping @Sendable (UnsafeMutablePointer<UInt32>, UnsafeRawPointer, Int) -> Void) -> Bool {
        let candidate = CryptoBackend(kind: .hardware, sha256Compress: compress, aes256: CryptoBackend.portable.aes256)
        let abc = SHA256.hash(Array("abc".utf8), backend: candidate)
        let twoBlocks = SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), backend: candidate)
        let sample = pseudoRandomBytes(1000)
        return abc == hexBytes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            && twoBlocks == hexBytes("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
            && SHA256.hash(sample, backend: candidate) == SHA256.hash(sample, backend: .portable)
    }

    /// FIPS 197 appendix C.3 (AES-256 single block), then CTR agreement with the portable code
    /// on a 1028-byte spiped packet body and on a counter that carries across 64 bits.
    static func aes256(_ engine: AES256Engine) -> Bool {
        let candidate = CryptoBackend(kind: .hardware, sha256Compress: CryptoBackend.portable.sha256Compress, aes256: engine)
        guard let key = try? AES256Key(key: hexBytes("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"), backend: candidate),
              let reference = try? AES256Key(key: hexBytes("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"), backend: .portable)
        else { return false }
        var block = hexBytes("00112233445566778899aabbccddeeff")
        block.withUnsafeMutableBytes { key.encryptBlock($0.baseAddress!, $0.baseAddress!) }
        guard block == hexBytes("8ea2b7ca516745bfeafc49904b496089") else { return false }

        let input = pseudoRandomBytes(1028)
        var fromCandidate = [UInt8](repeating: 0, count: input.count)
        var fromReference = fromCandidate
        let carryCounter: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 7] + [UInt8](repeating: 0xff, count: 7) + [0xf0]
        for counter in [[UInt8](repeating: 0, count: 16), carryCounter] {
            input.withUnsafeBytes { source in
                fromCandidate.withUnsafeMutableBytes { key.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
                fromReference.withUnsafeMutableBytes { reference.ctrXor(initialCounterBlock: counter, input: source, output: $0) }
            }
            guard fromCandidate == fromReference else { return false }
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
