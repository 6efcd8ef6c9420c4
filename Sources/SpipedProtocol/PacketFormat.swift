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

    /// Most packets the sealer and opener authenticate in one batch (a pump buffer's worth of
    /// 64 packets is four batches of 16, the widest multi-stream SHA-256).
    static let maximumBatchPacketCount = 16

    /// The tags of `count` (1...`maximumBatchPacketCount`) consecutive packets side by side:
    /// for packet i (0..<count) at `packets + 1060 i`, HMAC(H, ciphertext[0..<1028] || be64(n + i))
    /// goes to `tags + tagStride * i`, where n is `firstPacketNumber` (n + count - 1 must not
    /// pass 2^64 - 1). Same result as `count` `authenticate` calls; the messages have equal
    /// lengths, so every SHA-256 block is compressed in groups (`HMACSHA256.authenticationCodes`).
    static func authenticateBatch(_ prepared: HMACSHA256, packets: UnsafeRawPointer, count: Int,
                                  firstPacketNumber: UInt64, tags: UnsafeMutableRawPointer, tagStride: Int) {
        precondition(count >= 1 && count <= maximumBatchPacketCount, "PacketFormat.authenticateBatch: 1...16 packets")
        precondition(UInt64.max - firstPacketNumber >= UInt64(count - 1), "a packet batch needs a packet number per packet")
        withUnsafeTemporaryAllocation(of: HMACSHA256.self, capacity: count) { macs in
            withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: count) { messages in
                withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer.self, capacity: count) { tagPointers in
                    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { numberFields in
                        macs.initialize(repeating: prepared)
                        for index in 0..<count {
                            messages.initializeElement(at: index, to: packets + index * packetByteCount)
                            tagPointers.initializeElement(at: index, to: tags + index * tagStride)
                            numberFields.initializeElement(at: index, to: (firstPacketNumber + UInt64(index)).bigEndian)
                        }
                        HMACSHA256.update(macs, UnsafeBufferPointer(messages), byteCount: ciphertextByteCount)
                        for index in 0..<count {
                            messages[index] = UnsafeRawPointer(numberFields.baseAddress! + index)
                        }
                        HMACSHA256.update(macs, UnsafeBufferPointer(messages), byteCount: 8)
                        HMACSHA256.finalize(macs, into: UnsafeBufferPointer(tagPointers))
                        // finalize has wiped every copy of the keyed state.
                    }
                }
            }
        }
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
