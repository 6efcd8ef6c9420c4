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
            let payloadCount = min(PacketFormat.maximumPayloadByteCount, plaintext.count - consumed)
            let secondPayloadCount = min(PacketFormat.maximumPayloadByteCount, plaintext.count - consumed - payloadCount)
            if secondPayloadCount > 0 && output.count - produced >= 2 * PacketFormat.packetByteCount
                && nextPacketNumber < UInt64.max {
                // Two packets at once: their MACs are computed side by side.
                sealPacketPair(from: plaintext.baseAddress! + consumed, firstCount: payloadCount,
                               secondCount: secondPayloadCount, to: output.baseAddress! + produced)
                consumed += payloadCount + secondPayloadCount
                produced += 2 * PacketFormat.packetByteCount
            } else {
                sealPacket(from: plaintext.baseAddress! + consumed, count: payloadCount, to: output.baseAddress! + produced)
                consumed += payloadCount
                produced += PacketFormat.packetByteCount
            }
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

    /// Writes two consecutive packets at `packets` (2120 bytes): the first carries `firstCount`
    /// (1...1024) bytes from `payload`, the second the following `secondCount` (1...1024) bytes.
    /// Requires `nextPacketNumber < 2^64 - 1` (both numbers exist).
    private func sealPacketPair(from payload: UnsafeRawPointer, firstCount: Int, secondCount: Int,
                                to packets: UnsafeMutableRawPointer) {
        let firstNumber = nextPacketNumber
        let second = packets + PacketFormat.packetByteCount
        encryptPacketBody(from: payload, count: firstCount, to: packets, packetNumber: firstNumber)
        encryptPacketBody(from: payload + firstCount, count: secondCount, to: second, packetNumber: firstNumber + 1)
        PacketFormat.authenticatePair(authenticator, ciphertextA: packets, ciphertextB: second,
                                      firstPacketNumber: firstNumber,
                                      tagA: packets + PacketFormat.ciphertextByteCount,
                                      tagB: second + PacketFormat.ciphertextByteCount)
        if firstNumber + 1 == UInt64.max {
            counterExhausted = true
        } else {
            nextPacketNumber = firstNumber + 2
        }
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
