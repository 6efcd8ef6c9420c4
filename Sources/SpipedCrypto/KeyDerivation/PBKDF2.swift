/// PBKDF2 (RFC 8018 §5.2) key derivation.
public enum PBKDF2 {
    /// PBKDF2-HMAC-SHA256 (RFC 8018).
    ///
    /// Output block `i` (counting from 1) is `T_i = U_1 ⊕ U_2 ⊕ … ⊕ U_c` with
    /// `U_1 = HMAC(password, salt || be32(i))` and `U_j = HMAC(password, U_{j-1})`; the output is
    /// `T_1 || T_2 || …` cut to `outputByteCount`. The keyed HMAC state (and the state after the
    /// salt) is prepared once and copied for every HMAC call, so each iteration costs two
    /// compressions. Throws `CryptoError.invalidParameter` unless `iterations >= 1` and
    /// `1 <= outputByteCount <= (2^32 - 1) * 32`.
    public static func sha256(password: [UInt8], salt: [UInt8], iterations: Int, outputByteCount: Int,
                              backend: CryptoBackend = .portable) throws(CryptoError) -> [UInt8] {
        let outcome = password.withUnsafeBytes { password in
            Result { () throws(CryptoError) in
                try sha256(password: password, salt: salt, iterations: iterations, outputByteCount: outputByteCount, backend: backend)
            }
        }
        return try outcome.get()
    }

    /// PBKDF2-HMAC-SHA256 with the password in memory the caller owns (a key kept in pages of
    /// its own, for instance): the same computation as the array form, without copying it.
    public static func sha256(password: UnsafeRawBufferPointer, salt: [UInt8], iterations: Int, outputByteCount: Int,
                              backend: CryptoBackend = .portable) throws(CryptoError) -> [UInt8] {
        let maximumOutput = Int(UInt32.max) * HMACSHA256.tagByteCount
        guard iterations >= 1, outputByteCount >= 1, outputByteCount <= maximumOutput else {
            throw CryptoError.invalidParameter
        }
        var keyed = HMACSHA256(key: password, backend: backend)
        var saltAbsorbed = keyed
        saltAbsorbed.update(salt)

        var output = [UInt8](repeating: 0, count: outputByteCount)
        // U_j and the running XOR T_i, inline so they can be wiped.
        var chainValue = InlineArray<32, UInt8>(repeating: 0)
        var blockSum = InlineArray<32, UInt8>(repeating: 0)
        withUnsafeMutableBytes(of: &chainValue) { chain in
            withUnsafeMutableBytes(of: &blockSum) { sum in
                output.withUnsafeMutableBytes { out in
                    var offset = 0
                    var blockNumber: UInt32 = 1
                    while offset < outputByteCount {
                        var mac = saltAbsorbed
                        withUnsafeBytes(of: blockNumber.bigEndian) { mac.update($0) }   // INT(i), big-endian
                        mac.finalize(into: chain)                                       // U_1
                        sum.copyMemory(from: UnsafeRawBufferPointer(chain))
                        for _ in 1..<iterations {
                            mac = keyed
                            mac.update(UnsafeRawBufferPointer(chain))
                            mac.finalize(into: chain)                                   // U_j
                            for word in 0..<4 {
                                let x = sum.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self)
                                    ^ chain.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self)
                                sum.storeBytes(of: x, toByteOffset: word * 8, as: UInt64.self)
                            }
                        }
                        let count = min(HMACSHA256.tagByteCount, outputByteCount - offset)
                        (out.baseAddress! + offset).copyMemory(from: sum.baseAddress!, byteCount: count)
                        offset += count
                        blockNumber &+= 1
                    }
                }
                SecureWipe.wipe(sum)
            }
            SecureWipe.wipe(chain)
        }
        keyed.wipe()
        saltAbsorbed.wipe()
        return output
    }
}
