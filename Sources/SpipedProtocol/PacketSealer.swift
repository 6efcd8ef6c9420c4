import SpipedCrypto

/// Turns plaintext into 1060-byte spiped packets for one direction.
///
/// Each packet carries 1 to 1024 plaintext bytes, zero padded to 1024, followed by the
/// be32 payload length; that 1028-byte block is encrypted with AES-256-CTR (counter block
/// `be64(n) || be64(i)`) and followed by HMAC-SHA256(H, ciphertext || be64(n)).
/// Packets are written straight into the caller's buffer: no allocation per packet.
public final class PacketSealer {
    /// Size of one packet on the wire.
    public static let packetByteCount = PacketFormat.packetByteCount
    /// Largest payload of one packet.
    public static let maximumPayloadByteCount = PacketFormat.maximumPayloadByteCount

    private let cipher: AES256Key
    /// HMAC state already keyed with H; copied for each packet.
    private var authenticator: HMACSHA256
    private var nextPacketNumber: UInt64
    /// Set after packet number 2^64 - 1 has been sent.
    private var counterExhausted = false
    private var failed = false

    /// A sealer with the prepared keys of its direction, numbering packets
    /// from `firstPacketNumber` (0 on the wire; other values only let tests reach the counter's end).
    init(keys: PacketKeys, firstPacketNumber: UInt64 = 0) {
        cipher = keys.cipher
        authenticator = keys.authenticator
        nextPacketNumber = firstPacketNumber
    }

    /// A sealer from the raw 32-byte keys E and H of one direction (for benchmarks and tools;
    /// a handshake's `makeSession()` is the normal way to get one).
    public convenience init(cipherKey: [UInt8], authenticationKey: [UInt8], backend: CryptoBackend = .portable) {
        self.init(keys: PacketKeys(cipherKey: cipherKey, authenticationKey: authenticationKey, backend: backend))
    }

    deinit {
        authenticator.wipe()
    }

    /// Seals as much of `plaintext` as fits into whole packets in `output` (each packet carries
    /// up to 1024 bytes). Returns plaintext bytes consumed and ciphertext bytes written.
    ///
    /// `plaintext` and `output` must not overlap. Nothing is consumed when `output` holds less
    /// than 1060 bytes. Throws `.packetCounterExhausted` when 2^64 packets have been sent (if
    /// earlier packets of the same call were sealed, they are returned and the next call throws).
    public func seal(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(SpipedProtocolError) -> (consumed: Int, produced: Int) {
        if failed { throw .alreadyFailed }
        var consumed = 0
        var produced = 0
        while consumed < plaintext.count && output.count - produced >= PacketFormat.packetByteCount {
            if counterExhausted {
                if produced > 0 { break }
                failed = true
                throw .packetCounterExhausted
            }
            // As many packets as the plaintext fills (the last may be partial), the output holds
            // and the counter numbers, up to one batch: their MACs are computed side by side.
            let remaining = plaintext.count - consumed
            var packetCount = min((remaining + PacketFormat.maximumPayloadByteCount - 1) / PacketFormat.maximumPayloadByteCount,
                                  (output.count - produced) / PacketFormat.packetByteCount,
                                  PacketFormat.maximumBatchPacketCount)
            let numbersAfterNext = UInt64.max - nextPacketNumber
            if numbersAfterNext < UInt64(packetCount - 1) { packetCount = Int(numbersAfterNext) + 1 }
            if packetCount == 1 {
                let payloadCount = min(PacketFormat.maximumPayloadByteCount, remaining)
                sealPacket(from: plaintext.baseAddress! + consumed, count: payloadCount, to: output.baseAddress! + produced)
                consumed += payloadCount
            } else {
                consumed += sealPacketBatch(from: plaintext.baseAddress! + consumed, available: remaining,
                                            packetCount: packetCount, to: output.baseAddress! + produced)
            }
            produced += packetCount * PacketFormat.packetByteCount
        }
        return (consumed, produced)
    }

    /// Writes one packet carrying `count` (1...1024) bytes from `payload` at `packet`.
    private func sealPacket(from payload: UnsafeRawPointer, count: Int, to packet: UnsafeMutableRawPointer) {
        let packetNumber = nextPacketNumber
        encryptPacketBody(from: payload, count: count, to: packet, packetNumber: packetNumber)
        PacketFormat.authenticate(authenticator, ciphertext: packet, packetNumber: packetNumber,
                                  tag: packet + PacketFormat.ciphertextByteCount)
        if packetNumber == UInt64.max {
            counterExhausted = true
        } else {
            nextPacketNumber = packetNumber + 1
        }
    }

    /// Writes `packetCount` (2...16) consecutive packets at `packets` (1060 bytes each), carrying
    /// the first bytes of the `available` bytes at `payload`: every packet but the last carries
    /// 1024 of them, the last up to 1024. Returns the payload bytes used. Requires
    /// `available > 1024 (packetCount - 1)` and numbers for every packet
    /// (`nextPacketNumber + packetCount - 1 <= 2^64 - 1`).
    private func sealPacketBatch(from payload: UnsafeRawPointer, available: Int, packetCount: Int,
                                 to packets: UnsafeMutableRawPointer) -> Int {
        let firstNumber = nextPacketNumber
        var used = 0
        for index in 0..<packetCount {
            let count = min(PacketFormat.maximumPayloadByteCount, available - used)
            encryptPacketBody(from: payload + used, count: count, to: packets + index * PacketFormat.packetByteCount,
                              packetNumber: firstNumber + UInt64(index))
            used += count
        }
        PacketFormat.authenticateBatch(authenticator, packets: UnsafeRawPointer(packets), count: packetCount,
                                       firstPacketNumber: firstNumber, tags: packets + PacketFormat.ciphertextByteCount,
                                       tagStride: PacketFormat.packetByteCount)
        let lastNumber = firstNumber + UInt64(packetCount - 1)
        if lastNumber == UInt64.max {
            counterExhausted = true
        } else {
            nextPacketNumber = lastNumber + 1
        }
        return used
    }

    /// Writes the 1028-byte ciphertext of packet `packetNumber` carrying `count` (1...1024)
    /// bytes from `payload` at `packet`.
    private func encryptPacketBody(from payload: UnsafeRawPointer, count: Int, to packet: UnsafeMutableRawPointer,
                                   packetNumber: UInt64) {
        // Plaintext block: payload, zero padding, be32 length; then encrypt it in place.
        packet.copyMemory(from: payload, byteCount: count)
        (packet + count).initializeMemory(as: UInt8.self, repeating: 0, count: PacketFormat.maximumPayloadByteCount - count)
        var lengthField = UInt32(count).bigEndian
        withUnsafeBytes(of: &lengthField) {
            (packet + PacketFormat.lengthFieldOffset).copyMemory(from: $0.baseAddress!, byteCount: 4)
        }
        cipher.spipedCTRXor(packetNumber: packetNumber, input: packet, output: packet, count: PacketFormat.ciphertextByteCount)
    }
}
