/// HKDF (RFC 5869) with HMAC-SHA256.
public enum HKDF {
    /// Largest output HKDF-Expand can produce with SHA-256: 255 blocks of 32 bytes.
    public static let maximumOutputByteCount = 255 * HMACSHA256.tagByteCount

    /// HKDF-Extract with SHA-256 (RFC 5869 §2.2): `PRK = HMAC(salt, inputKeyMaterial)`, 32 bytes.
    /// An empty salt acts as 32 zero bytes, as the RFC specifies (HMAC zero-pads the key anyway).
    public static func extract(salt: [UInt8], inputKeyMaterial: [UInt8], backend: CryptoBackend = .portable) -> [UInt8] {
        HMACSHA256.authenticationCode(key: salt, message: inputKeyMaterial, backend: backend)
    }

    /// HKDF-Expand with SHA-256 (RFC 5869 §2.3); outputByteCount <= 255 * 32.
    ///
    /// `T(0)` is empty, `T(i) = HMAC(PRK, T(i-1) || info || byte(i))`, and the output is
    /// `T(1) || T(2) || …` cut to `outputByteCount`. Throws `CryptoError.invalidParameter` unless
    /// `1 <= outputByteCount <= 8160`.
    public static func expand(pseudoRandomKey: [UInt8], info: [UInt8], outputByteCount: Int,
                              backend: CryptoBackend = .portable) throws(CryptoError) -> [UInt8] {
        guard outputByteCount >= 1, outputByteCount <= maximumOutputByteCount else {
            throw CryptoError.invalidParameter
        }
        var keyed = HMACSHA256(key: pseudoRandomKey, backend: backend)
        var output = [UInt8](repeating: 0, count: outputByteCount)
        var previousBlock = InlineArray<32, UInt8>(repeating: 0)   // T(i-1)
        withUnsafeMutableBytes(of: &previousBlock) { previous in
            output.withUnsafeMutableBytes { out in
                var offset = 0
                var counter: UInt8 = 1
                while offset < outputByteCount {
                    var mac = keyed
                    if counter > 1 { mac.update(UnsafeRawBufferPointer(previous)) }
                    mac.update(info)
                    withUnsafeBytes(of: counter) { mac.update($0) }
                    mac.finalize(into: previous)
                    let count = min(HMACSHA256.tagByteCount, outputByteCount - offset)
                    (out.baseAddress! + offset).copyMemory(from: previous.baseAddress!, byteCount: count)
                    offset += count
                    counter &+= 1
                }
            }
            SHA256.zeroize(previous)
        }
        keyed.wipe()
        return output
    }
}
