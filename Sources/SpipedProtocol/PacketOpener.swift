import SpipedCrypto

/// Verifies and decrypts 1060-byte packets of one direction, from input in any chunking.
///
/// For each packet the MAC over `ciphertext || be64(n)` is checked in constant time before
/// anything is decrypted; then only the length field is decrypted and checked (1...1024), and
/// only the payload bytes are decrypted, straight into the caller's output. Whole packets are
/// read directly from the caller's input; only a packet split across calls is copied into an
/// internal 1060-byte buffer. No allocation per packet.
public final class PacketOpener {
    private let cipher: AES256Key
    /// HMAC state already keyed with H; copied for each packet.
    private var authenticator: HMACSHA256
    private var nextPacketNumber: UInt64
    /// Set after packet number 2^64 - 1 has been received.
    private var counterExhausted = false
    private var failed = false
    /// A failure met after earlier packets of the same call were opened: those are returned
    /// first, and the next call (or end of stream) throws this.
    private var deferredFailure: SpipedProtocolError?
    /// The start of a packet that arrived split across calls.
    private let partialPacket = UnsafeMutableRawBufferPointer.allocate(byteCount: PacketFormat.packetByteCount, alignment: 16)
    private var partialCount = 0
    /// The tags expected for the packet(s) being opened: 32 bytes per packet of a batch, in order.
    private let expectedTags = UnsafeMutableRawBufferPointer.allocate(
        byteCount: PacketFormat.maximumBatchPacketCount * HMACSHA256.tagByteCount, alignment: 16)

    /// An opener with the prepared keys of its direction, expecting packet
    /// number `firstPacketNumber` first (0 on the wire; other values only let tests reach the
    /// counter's end).
    init(keys: PacketKeys, firstPacketNumber: UInt64 = 0) {
        cipher = keys.cipher
        authenticator = keys.authenticator
        nextPacketNumber = firstPacketNumber
    }

    /// An opener from the raw 32-byte keys E and H of one direction (for benchmarks and tools;
    /// a handshake's `makeSession()` is the normal way to get one).
    public convenience init(cipherKey: [UInt8], authenticationKey: [UInt8], backend: CryptoBackend = .portable) {
        self.init(keys: PacketKeys(cipherKey: cipherKey, authenticationKey: authenticationKey, backend: backend))
    }

    deinit {
        authenticator.wipe()
        partialPacket.deallocate()
        expectedTags.deallocate()
    }

    /// Consumes ciphertext and writes verified plaintext to `output` (which must have room for at
    /// least 1024 bytes). Returns ciphertext consumed and plaintext written; it stops early when
    /// `output` has no room for another packet's payload.
    ///
    /// Throws `.packetAuthenticationFailed` for a packet whose MAC does not verify (altered,
    /// replayed, reordered, dropped, or sealed with another key), `.invalidPacketLength` for
    /// a verified packet whose length field is 0 or above 1024, `.packetCounterExhausted` after
    /// 2^64 packets. Any error is terminal. When packets that verified precede the bad one in
    /// the same call, their plaintext is returned first (consumption stops at the bad packet)
    /// and the error is thrown by the next call. `ciphertext` and `output` must not overlap.
    public func open(_ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(SpipedProtocolError) -> (consumed: Int, produced: Int) {
        try throwIfFailed()
        var consumed = 0
        var produced = 0
        do {
            while consumed < ciphertext.count && output.count - produced >= PacketFormat.maximumPayloadByteCount {
                let available = ciphertext.count - consumed
                let source = ciphertext.baseAddress! + consumed
                let destination = output.baseAddress! + produced
                if partialCount == 0 && available >= 2 * PacketFormat.packetByteCount
                    && output.count - produced >= 2 * PacketFormat.maximumPayloadByteCount
                    && !counterExhausted && nextPacketNumber < UInt64.max {
                    // Whole packets in the caller's buffer (up to one batch, as many as the output
                    // has room for and the counter numbers): compute their MACs side by side, then
                    // verify and open each in turn exactly as a single packet. If one fails, the
                    // plaintext of those before it is still returned (see above).
                    var packetCount = min(available / PacketFormat.packetByteCount,
                                          (output.count - produced) / PacketFormat.maximumPayloadByteCount,
                                          PacketFormat.maximumBatchPacketCount)
                    let numbersAfterNext = UInt64.max - nextPacketNumber
                    if numbersAfterNext < UInt64(packetCount - 1) { packetCount = Int(numbersAfterNext) + 1 }
                    let tags = expectedTags.baseAddress!
                    PacketFormat.authenticateBatch(authenticator, packets: UnsafeRawPointer(source), count: packetCount,
                                                   firstPacketNumber: nextPacketNumber, tags: tags,
                                                   tagStride: HMACSHA256.tagByteCount)
                    for index in 0..<packetCount {
                        produced += try openAuthenticatedPacket(UnsafeRawPointer(source + index * PacketFormat.packetByteCount),
                                                                expectedTag: UnsafeRawPointer(tags + index * HMACSHA256.tagByteCount),
                                                                into: output.baseAddress! + produced)
                        consumed += PacketFormat.packetByteCount
                    }
                } else if partialCount == 0 && available >= PacketFormat.packetByteCount {
                    // A whole packet in the caller's buffer: open it in place.
                    produced += try openPacket(UnsafeRawPointer(source), into: destination)
                    consumed += PacketFormat.packetByteCount
                } else {
                    let take = min(PacketFormat.packetByteCount - partialCount, available)
                    (partialPacket.baseAddress! + partialCount).copyMemory(from: source, byteCount: take)
                    partialCount += take
                    consumed += take
                    if partialCount == PacketFormat.packetByteCount {
                        partialCount = 0
                        produced += try openPacket(UnsafeRawPointer(partialPacket.baseAddress!), into: destination)
                    }
                }
            }
        } catch {
            if produced > 0 {
                deferredFailure = error
                return (consumed, produced)
            }
            failed = true
            throw error
        }
        return (consumed, produced)
    }

    /// Throws the deferred failure once, then `.alreadyFailed`.
    private func throwIfFailed() throws(SpipedProtocolError) {
        if let failure = deferredFailure {
            deferredFailure = nil
            failed = true
            throw failure
        }
        if failed { throw .alreadyFailed }
    }

    /// The peer closed its side: throws `.truncated` if a partial packet is buffered.
    public func receiveEndOfStream() throws(SpipedProtocolError) {
        try throwIfFailed()
        if partialCount != 0 {
            failed = true
            throw .truncated
        }
    }

    /// Verifies the 1060-byte packet at `packet` and writes its payload to `output`
    /// (room for 1024 bytes). Returns the payload length.
    private func openPacket(_ packet: UnsafeRawPointer, into output: UnsafeMutableRawPointer) throws(SpipedProtocolError) -> Int {
        let expectedTag = expectedTags.baseAddress!
        PacketFormat.authenticate(authenticator, ciphertext: packet, packetNumber: nextPacketNumber, tag: expectedTag)
        return try openAuthenticatedPacket(packet, expectedTag: UnsafeRawPointer(expectedTag), into: output)
    }

    /// Opens the 1060-byte packet at `packet` as packet number `nextPacketNumber`, given
    /// `expectedTag`, the 32-byte HMAC the sender must have computed over its ciphertext and that
    /// number: compares it with the received tag in constant time, and only when they match
    /// decrypts the length field and the payload into `output` (room for 1024 bytes). Returns
    /// the payload length and advances the packet number.
    private func openAuthenticatedPacket(_ packet: UnsafeRawPointer, expectedTag: UnsafeRawPointer,
                                         into output: UnsafeMutableRawPointer) throws(SpipedProtocolError) -> Int {
        if counterExhausted { throw .packetCounterExhausted }
        let packetNumber = nextPacketNumber

        // 1. MAC first, compared in constant time; nothing is decrypted before it verifies.
        let received = UnsafeRawBufferPointer(start: packet + PacketFormat.ciphertextByteCount, count: HMACSHA256.tagByteCount)
        let expected = UnsafeRawBufferPointer(start: expectedTag, count: HMACSHA256.tagByteCount)
        guard ConstantTime.equal(expected, received) else { throw .packetAuthenticationFailed }

        // 2. Decrypt just the length field: the first 4 bytes of CTR block 64, whose counter
        //    block is be64(n) || be64(64).
        var keystream: (UInt64, UInt64) = (packetNumber.bigEndian, PacketFormat.lengthFieldBlockIndex.bigEndian)
        let payloadCount = withUnsafeMutableBytes(of: &keystream) { block -> UInt32 in
            cipher.encryptBlock(block.baseAddress!, block.baseAddress!)
            var length: UInt32 = 0
            for index in 0..<4 {
                let plain = packet.load(fromByteOffset: PacketFormat.lengthFieldOffset + index, as: UInt8.self) ^ block[index]
                length = length << 8 | UInt32(plain)
            }
            SecureWipe.wipe(block)
            return length
        }
        guard payloadCount >= 1 && payloadCount <= UInt32(PacketFormat.maximumPayloadByteCount) else {
            throw .invalidPacketLength(payloadCount)
        }

        // 3. Decrypt only the payload (blocks 0... of packet n) into the caller's output.
        cipher.spipedCTRXor(packetNumber: packetNumber, input: packet, output: output, count: Int(payloadCount))
        if packetNumber == UInt64.max {
            counterExhausted = true
        } else {
            nextPacketNumber = packetNumber + 1
        }
        return Int(payloadCount)
    }
}
