import SpipedCrypto

/// The layout of one spiped data packet (both directions):
///
///     ct  = AES-256-CTR(E, M || zeros up to 1024 || be32(len(M)))     1028 bytes
///     tag = HMAC-SHA256(H, ct || be64(n))                                32 bytes
///
/// where n is the packet number (0, 1, 2, ... per direction) and the CTR counter block for
/// 16-byte block i of packet n is be64(n) || be64(i).
enum PacketFormat {
    /// Largest payload of one packet.
    static let maximumPayloadByteCount = 1024
    /// Offset of the be32 length field inside the encrypted part.
    static let lengthFieldOffset = maximumPayloadByteCount
    /// Bytes covered by the cipher: payload area plus length field.
    static let ciphertextByteCount = maximumPayloadByteCount + 4
    /// Size of one packet on the wire.
    static let packetByteCount = ciphertextByteCount + HMACSHA256.tagByteCount
    /// The CTR block index holding the length field (1024 / 16 = 64; the field is its first 4 bytes).
    static let lengthFieldBlockIndex: UInt64 = UInt64(lengthFieldOffset / 16)

    /// Writes HMAC(H, ciphertext[0..<1028] || be64(packetNumber)) to `tag` (32 bytes), using a
    /// copy of the prepared keyed state (the copy is wiped by `finalize`).
    static func authenticate(_ prepared: HMACSHA256, ciphertext: UnsafeRawPointer, packetNumber: UInt64,
                             tag: UnsafeMutableRawPointer) {
        var mac = prepared
        mac.update(UnsafeRawBufferPointer(start: ciphertext, count: ciphertextByteCount))
        var numberField = packetNumber.bigEndian
        withUnsafeBytes(of: &numberField) { mac.update($0) }
        mac.finalize(into: UnsafeMutableRawBufferPointer(start: tag, count: HMACSHA256.tagByteCount))   // also wipes `mac`
    }

    /// The tags of two consecutive packets side by side: HMAC(H, ciphertextA[0..<1028] ||
    /// be64(n)) to `tagA` and HMAC(H, ciphertextB[0..<1028] || be64(n + 1)) to `tagB`, where n is
    /// `firstPacketNumber` (must be below 2^64 - 1). Same result as two `authenticate` calls; the
    /// two messages have equal lengths, so every SHA-256 block is compressed as a pair.
    static func authenticatePair(_ prepared: HMACSHA256, ciphertextA: UnsafeRawPointer, ciphertextB: UnsafeRawPointer,
                                 firstPacketNumber: UInt64,
                                 tagA: UnsafeMutableRawPointer, tagB: UnsafeMutableRawPointer) {
        precondition(firstPacketNumber < UInt64.max, "a packet pair needs two packet numbers")
        var macA = prepared, macB = prepared
        HMACSHA256.update(&macA, UnsafeRawBufferPointer(start: ciphertextA, count: ciphertextByteCount),
                          &macB, UnsafeRawBufferPointer(start: ciphertextB, count: ciphertextByteCount))
        var numberFields: (UInt64, UInt64) = (firstPacketNumber.bigEndian, (firstPacketNumber + 1).bigEndian)
        withUnsafeBytes(of: &numberFields) { fields in
            HMACSHA256.update(&macA, UnsafeRawBufferPointer(rebasing: fields[0..<8]),
                              &macB, UnsafeRawBufferPointer(rebasing: fields[8..<16]))
        }
        HMACSHA256.finalize(&macA, into: UnsafeMutableRawBufferPointer(start: tagA, count: HMACSHA256.tagByteCount),
                            &macB, into: UnsafeMutableRawBufferPointer(start: tagB, count: HMACSHA256.tagByteCount))
        // finalize has wiped both copies of the keyed state.
    }

    /// Expands a 32-byte key for AES-256. The handshake always supplies 32 bytes.
    static func cipher(_ key: UnsafeRawBufferPointer, backend: CryptoBackend) -> AES256Key {
        precondition(key.count == 32, "spiped packet keys are 32 bytes")
        do {
            return try AES256Key(key: key, backend: backend)
        } catch {
            preconditionFailure("AES-256 refused a 32-byte key: \(error)")
        }
    }
}

/// The prepared keys of one direction: AES-256 expanded from E, HMAC state keyed with H.
struct PacketKeys {
    /// AES-256 with key E.
    let cipher: AES256Key
    /// HMAC-SHA256 keyed with H, copied for each packet.
    let authenticator: HMACSHA256

    /// Prepares the 32-byte keys E (`cipherKey`) and H (`authenticationKey`).
    init(cipherKey: UnsafeRawBufferPointer, authenticationKey: UnsafeRawBufferPointer, backend: CryptoBackend) {
        precondition(authenticationKey.count == 32, "spiped packet keys are 32 bytes")
        cipher = PacketFormat.cipher(cipherKey, backend: backend)
        authenticator = HMACSHA256(key: authenticationKey, backend: backend)
    }

    /// Prepares the 32-byte keys E and H given as arrays.
    init(cipherKey: [UInt8], authenticationKey: [UInt8], backend: CryptoBackend) {
        self = cipherKey.withUnsafeBytes { cipher in
            authenticationKey.withUnsafeBytes { PacketKeys(cipherKey: cipher, authenticationKey: $0, backend: backend) }
        }
    }
}
