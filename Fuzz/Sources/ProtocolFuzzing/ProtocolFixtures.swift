import FuzzSupport
import SpipedCrypto
import SpipedProtocol

/// Fixed key material shared by the protocol fuzz targets, and the key schedule of the
/// protocol recomputed here from `PROTOCOL.md` so a target can play the peer's part.
public enum ProtocolFixtures {
    /// The key file every fuzzed handshake uses.
    public static let keyFileContents: [UInt8] = Array("spiped fuzzing key file: 32+ bytes of it".utf8)
    /// K = SHA256(key file).
    public static let keyHash: [UInt8] = SHA256.hash(keyFileContents)
    /// The protocol's view of the same key.
    public static let key = SpipedKey(fileContents: keyFileContents)

    /// dk1 = PBKDF2-HMAC-SHA256(K, nC || nS, 1, 64) = dhmacC || dhmacS.
    public static func handshakeMACKeys(clientNonce: [UInt8], serverNonce: [UInt8]) -> [UInt8] {
        pbkdf2(salt: clientNonce + serverNonce, byteCount: 64)
    }

    /// dk2 = PBKDF2-HMAC-SHA256(K, nC || nS || ySC, 1, 128) = E_C || H_C || E_S || H_S.
    public static func sessionKeys(clientNonce: [UInt8], serverNonce: [UInt8], sharedSecret: [UInt8]) -> [UInt8] {
        pbkdf2(salt: clientNonce + serverNonce + sharedSecret, byteCount: 128)
    }

    /// The handshake message `y || HMAC-SHA256(macKey, y)`.
    public static func publicValueMessage(_ y: [UInt8], macKey: ArraySlice<UInt8>) -> [UInt8] {
        y + HMACSHA256.authenticationCode(key: Array(macKey), message: y)
    }

    /// y = 1 as 256 big-endian bytes (what a -f peer sends, and the shared secret it implies).
    public static let one: [UInt8] = [UInt8](repeating: 0, count: 255) + [1]

    private static func pbkdf2(salt: [UInt8], byteCount: Int) -> [UInt8] {
        do {
            return try PBKDF2.sha256(password: keyHash, salt: salt, iterations: 1, outputByteCount: byteCount)
        } catch {
            fuzzFailure("PBKDF2 refused valid parameters: \(error)")
        }
    }

    /// Opens one sealed packet by hand (MAC check, CTR decryption, length field), independently
    /// of `PacketOpener`: returns the payload, or nil when the MAC or length is wrong.
    public static func openPacketByHand(_ packet: [UInt8], packetNumber: UInt64, cipherKey: [UInt8],
                                        macKey: [UInt8]) -> [UInt8]? {
        guard packet.count == 1060 else { return nil }
        var numbered = Array(packet[..<1028])
        for shift in stride(from: 56, through: 0, by: -8) { numbered.append(UInt8(truncatingIfNeeded: packetNumber >> UInt64(shift))) }
        let tag = HMACSHA256.authenticationCode(key: macKey, message: numbered)
        guard ConstantTime.equal(tag, Array(packet[1028...])) else { return nil }
        guard let aes = try? AES256Key(key: cipherKey) else { fuzzFailure("AES key of 32 bytes refused") }
        var padded = [UInt8](repeating: 0, count: 1028)
        packet.withUnsafeBytes { source in
            padded.withUnsafeMutableBytes { aes.spipedCTRXor(packetNumber: packetNumber, input: source.baseAddress!, output: $0.baseAddress!, count: 1028) }
        }
        let length = Int(padded[1024]) << 24 | Int(padded[1025]) << 16 | Int(padded[1026]) << 8 | Int(padded[1027])
        guard (1...1024).contains(length) else { return nil }
        return Array(padded[..<length])
    }
}

/// Drains everything the handshake wants to send, in fuzzer-chosen slices; returns it.
public func drainOutput(_ handshake: Handshake, _ input: inout FuzzedInput) -> [UInt8] {
    var sent: [UInt8] = []
    while handshake.pendingOutput.count > 0 {
        let pending = handshake.pendingOutput
        let slice = min(pending.count, 1 + Int(input.byte()) % 320)
        sent += UnsafeRawBufferPointer(rebasing: pending[..<slice])
        handshake.consumeOutput(slice)
    }
    return sent
}

/// Feeds `bytes` to the handshake in fuzzer-chosen chunks, checking the consumption contract.
/// Returns the error that ended it, or nil; stops at the first error or at completion.
public func feed(_ handshake: Handshake, _ bytes: [UInt8], _ input: inout FuzzedInput) -> (error: SpipedProtocolError?, consumed: Int) {
    var offset = 0
    while offset < bytes.count {
        let chunk = min(bytes.count - offset, 1 + Int(input.byte()) % 330)
        let result: Int
        switch receive(handshake, bytes[offset..<(offset + chunk)]) {
        case .success(let consumed):
            result = consumed
        case .failure(let error):
            guard !handshake.isComplete else { fuzzFailure("handshake threw \(error) but says it is complete") }
            // Terminal: every later call fails too.
            if case .success = receive(handshake, bytes[...]) {
                fuzzFailure("handshake accepted input after failing with \(error)")
            }
            if (try? handshake.receiveEndOfStream()) != nil { fuzzFailure("receiveEndOfStream succeeded after \(error)") }
            if handshake.makeSession() != nil { fuzzFailure("a failed handshake handed out a session") }
            return (error, offset)
        }
        if result < 0 || result > chunk { fuzzFailure("receive consumed \(result) of \(chunk) bytes") }
        offset += result
        if result < chunk {
            if !handshake.isComplete { fuzzFailure("receive stopped early (\(result) of \(chunk)) before completion") }
            return (nil, offset)
        }
        if handshake.isComplete { return (nil, offset) }
    }
    return (nil, offset)
}
