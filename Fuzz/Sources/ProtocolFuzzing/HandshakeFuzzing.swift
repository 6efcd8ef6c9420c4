import FuzzSupport
import SpipedCrypto
import SpipedProtocol

/// One fuzz input against a `Handshake` of the given role.
///
/// Input layout: 1 byte of mode bits — bit 0: structured (else raw), bit 1: our side uses -f,
/// bit 2: our side requires forward secrecy (-g), bit 3: corrupt the peer's MAC, bits 4-6:
/// which special peer value to send (structured mode) — then the rest.
///
/// Raw mode: the rest is the peer's bytes, fed in fuzzer-chosen chunks (the chunk sizes come
/// from the end of the input). Random bytes can never carry a valid MAC, so the handshake must
/// never complete; each call must respect the consumption contract, and an error must be final.
///
/// Structured mode: the target plays the peer honestly — it knows the key and our injected
/// nonce, so it computes the correct MAC over a fuzzed (or special) DH value. The value then
/// reaches validation and exponentiation; the outcome must match the rules of SECURITY.md
/// ("Diffie-Hellman values we refuse"), and when the peer sends y = 1 (so the shared secret is
/// known to be 1) the session keys must be those computed independently here.
public func fuzzHandshake(role: HandshakeRole, data: [UInt8]) {
    var input = FuzzedInput(data)
    let mode = input.byte()
    let structured = mode & 1 != 0
    let options = HandshakeOptions(fast: mode & 2 != 0, requireForwardSecrecy: mode & 4 != 0)
    let corruptMAC = mode & 8 != 0
    let special = Int(mode >> 4) & 7
    let ownNonce = input.takePadded(32)

    let handshake: Handshake
    do {
        handshake = try Handshake(role: role, key: ProtocolFixtures.key, options: options, nonce: ownNonce)
    } catch {
        fuzzFailure("Handshake init failed: \(error)")
    }
    var sent = drainOutput(handshake, &input)
    if sent != ownNonce { fuzzFailure("first handshake output is not our nonce") }

    guard structured else {
        let peerBytes = input.take(input.remainingCount / 2)
        let (error, _) = feed(handshake, peerBytes, &input)
        _ = drainOutput(handshake, &input)
        if handshake.isComplete { fuzzFailure("raw bytes completed a handshake (MAC forgery)") }
        if error == nil {
            do {
                try handshake.receiveEndOfStream()
                fuzzFailure("end of stream inside a handshake did not throw")
            } catch {
                if error != .truncated { fuzzFailure("end of stream mid-handshake threw \(error), not .truncated") }
            }
        }
        return
    }

    // The peer's honest messages, with a fuzzed or special DH value.
    let peerNonce = input.takePadded(32)
    let prime = DiffieHellmanGroup14.primeBytes
    var peerValue: [UInt8]
    switch special {
    case 1: peerValue = [UInt8](repeating: 0, count: 256)                       // 0
    case 2: peerValue = ProtocolFixtures.one                                    // 1 (-f peer)
    case 3: peerValue = prime; peerValue[255] -= 1                              // p - 1
    case 4: peerValue = prime                                                   // p
    case 5: peerValue = bigEndianIncrement(prime)                               // p + 1
    case 6: peerValue = [UInt8](repeating: 0xff, count: 256)                    // 2^2048 - 1
    default: peerValue = input.takePadded(256)                                  // anything
    }
    let nonces = role == .client ? (client: ownNonce, server: peerNonce) : (client: peerNonce, server: ownNonce)
    let macKeys = ProtocolFixtures.handshakeMACKeys(clientNonce: nonces.client, serverNonce: nonces.server)
    let peerMACKey = role == .client ? macKeys[32..<64] : macKeys[0..<32]
    let ownMACKey = role == .client ? macKeys[0..<32] : macKeys[32..<64]
    var peerMessage = ProtocolFixtures.publicValueMessage(peerValue, macKey: peerMACKey)
    if corruptMAC { peerMessage[256 + Int(input.byte()) % 32] ^= 1 << (input.byte() & 7) }

    // The client sends y as soon as it has the server's nonce; the server only after ours.
    var (error, consumed) = feed(handshake, peerNonce, &input)
    if error != nil || consumed != 32 { fuzzFailure("a nonce was refused: \(String(describing: error))") }
    sent = drainOutput(handshake, &input)
    var ownValue: [UInt8]? = nil
    if role == .client {
        if sent.count != 288 { fuzzFailure("client sent \(sent.count) bytes after the server's nonce, not 288") }
        ownValue = checkOwnMessage(sent, macKey: ownMACKey, fast: options.fast)
    } else if !sent.isEmpty {
        fuzzFailure("server sent \(sent.count) bytes before the client's public value")
    }
    (error, consumed) = feed(handshake, peerMessage, &input)

    // What the rules say must happen.
    let expected: SpipedProtocolError?
    if corruptMAC {
        expected = .handshakeAuthenticationFailed
    } else if !peerValue.lexicographicallyPrecedes(prime) {
        expected = .publicValueRejected(.notLessThanPrime)
    } else if peerValue.allSatisfy({ $0 == 0 }) {
        expected = .publicValueRejected(.zero)
    } else if special == 3 {
        expected = .publicValueRejected(.primeMinusOne)
    } else {
        expected = nil
    }
    let mustRefuseOne = !corruptMAC && options.requireForwardSecrecy && peerValue == ProtocolFixtures.one
    if mustRefuseOne {
        if error != .forwardSecrecyRequired && error != .publicValueRejected(.one) {
            fuzzFailure("-g accepted y = 1 (error \(String(describing: error)))")
        }
        return
    }
    if error != expected {
        fuzzFailure("peer value \(hex(peerValue.prefix(8)))… macOK \(!corruptMAC): got \(String(describing: error)), expected \(String(describing: expected))")
    }
    if expected != nil {
        if handshake.isComplete { fuzzFailure("handshake completed after \(String(describing: expected))") }
        return
    }
    if !handshake.isComplete || consumed != 288 { fuzzFailure("honest handshake did not complete (consumed \(consumed))") }
    sent = drainOutput(handshake, &input)
    if role == .server {
        if sent.count != 288 { fuzzFailure("server sent \(sent.count) bytes after the client's value, not 288") }
        ownValue = checkOwnMessage(sent, macKey: ownMACKey, fast: options.fast)
    } else if !sent.isEmpty {
        fuzzFailure("client sent \(sent.count) more bytes after completing")
    }
    guard let session = handshake.makeSession() else { fuzzFailure("complete handshake gave no session") }
    if handshake.makeSession() != nil { fuzzFailure("makeSession handed out a second session") }

    // The shared secret is known when either side used y = 1 (-f): then check the keys.
    guard options.fast || peerValue == ProtocolFixtures.one, ownValue != nil else { return }
    let keys = ProtocolFixtures.sessionKeys(clientNonce: nonces.client, serverNonce: nonces.server,
                                            sharedSecret: ProtocolFixtures.one)
    let ownKeys = role == .client ? (cipher: Array(keys[0..<32]), mac: Array(keys[32..<64]))
                                  : (cipher: Array(keys[64..<96]), mac: Array(keys[96..<128]))
    let message = input.take(1 + Int(input.byte()) * 4)
    var packet = [UInt8](repeating: 0, count: 1060)
    let sealed: (consumed: Int, produced: Int)
    switch seal(session.sealer, message[...], into: &packet) {
    case .success(let result): sealed = result
    case .failure(let error): fuzzFailure("sealing \(message.count) bytes failed: \(error)")
    }
    if message.isEmpty { return }
    if sealed.consumed != message.count || sealed.produced != 1060 { fuzzFailure("seal returned \(sealed)") }
    guard let opened = ProtocolFixtures.openPacketByHand(packet, packetNumber: 0, cipherKey: ownKeys.cipher, macKey: ownKeys.mac),
          opened == message else {
        fuzzFailure("the session's first packet does not open with independently derived keys")
    }
}

/// n + 1 for a big-endian number (wrapping).
private func bigEndianIncrement(_ number: [UInt8]) -> [UInt8] {
    var result = number
    for index in stride(from: result.count - 1, through: 0, by: -1) {
        result[index] &+= 1
        if result[index] != 0 { break }
    }
    return result
}

/// Checks our side's `y || HMAC` message; returns y.
private func checkOwnMessage(_ message: [UInt8], macKey: ArraySlice<UInt8>, fast: Bool) -> [UInt8] {
    let y = Array(message[..<256])
    if ProtocolFixtures.publicValueMessage(y, macKey: macKey) != message { fuzzFailure("our own handshake MAC is wrong") }
    if fast && y != ProtocolFixtures.one { fuzzFailure("-f side did not send y = 1") }
    if !fast {
        do { try DiffieHellmanGroup14.validatePeerValue(y, requireForwardSecrecy: true) } catch {
            fuzzFailure("our own DH value fails validation: \(error)")
        }
    }
    return y
}
