import SpipedCrypto

/// Which end of the pipe: the client connects (`spiped -e`, `spipe`), the server accepts (`-d`).
public enum HandshakeRole: Sendable {
    /// The connecting side; sends with (E_C, H_C).
    case client
    /// The accepting side; sends with (E_S, H_S).
    case server
}

/// Handshake options.
public struct HandshakeOptions: Sendable, Equatable {
    /// `-f`: send y = 1 and skip Diffie-Hellman (no forward secrecy).
    public var fast: Bool
    /// `-g`: refuse a peer that sends y = 1.
    public var requireForwardSecrecy: Bool

    /// Options as given on the command line; both off by default.
    public init(fast: Bool = false, requireForwardSecrecy: Bool = false) {
        self.fast = fast
        self.requireForwardSecrecy = requireForwardSecrecy
    }
}

/// The sans-I/O handshake. Feed it received bytes in any chunking; write out `pendingOutput`.
///
/// Each side sends, in order, its 32-byte nonce and then `y || HMAC-SHA256(dhmac, y)` (288
/// bytes), and receives the same from the peer: 320 bytes each way. The client sends its
/// 288 bytes as soon as it knows the server's nonce; the server sends its 288 bytes only
/// after the client's have verified, so it reveals nothing that depends on K to a client
/// holding a different key.
///
/// When `isComplete` becomes true, `pendingOutput` may still hold the final handshake message:
/// send it before any packet. The shared secret (y_peer^x mod p, the slow step) is computed
/// only afterwards, by `finishKeyAgreement()` or lazily by `makeSession()`, so a server can
/// put its y on the wire first and its exponentiation overlaps the client's. `receive` stops consuming at the end of the handshake; the rest
/// of the input belongs to the packet stream.
public final class Handshake {
    /// Bytes of a nonce.
    public static let nonceByteCount = 32
    /// Bytes of a `y || HMAC(y)` message.
    public static let publicValueMessageByteCount = DiffieHellmanGroup14.valueByteCount + HMACSHA256.tagByteCount
    /// Bytes each side sends (and receives) during a handshake.
    public static let handshakeByteCount = nonceByteCount + publicValueMessageByteCount

    /// Where the handshake is.
    private enum Phase {
        /// Waiting for the rest of the peer's nonce.
        case awaitingNonce
        /// dk1 is known; waiting for the rest of the peer's `y || HMAC`.
        case awaitingPublicValue
        /// The peer's `y || HMAC` verified and our whole message is queued; the session keys
        /// are derived by `finishKeyAgreement()` (or `makeSession()`).
        case complete
        /// An error happened; every call throws `.alreadyFailed`.
        case failed
    }

    private let role: HandshakeRole
    private let options: HandshakeOptions
    private let backend: CryptoBackend
    /// The keys this side accepts: one for a client; one or more for a server (rotation, or
    /// routing by key). Every key is tried on every handshake (see `publicValueArrived`).
    private let keys: [SpipedKey]
    /// The key the peer proved it holds (index into `keys`), once its MAC verified.
    private var matchedKeyIndex: Int?
    /// Our x and y; nil when running fast (y = 1, ySC = 1), and dropped as soon as ySC is
    /// known or the handshake fails, so x is wiped once no pool holds it (forward secrecy).
    /// A server without a pair given at start takes one only once the client's MAC verified.
    private var keyPair: DHKeyPair?
    /// Where a server takes its key pair once the client authenticated (the proxy's pool);
    /// when it returns nil (or is not set) the pair is generated then (2^x mod p: slow).
    public var keyPairSource: (() -> DHKeyPair?)?
    /// Where a deferred server key pair's exponent comes from (the kernel unless a test says).
    private let randomSource: RandomSource
    /// Our nonce (public).
    private let ownNonce: [UInt8]
    private var phase = Phase.awaitingNonce

    /// The peer's 320 handshake bytes as they arrive: nonce, then y, then its HMAC. Allocated
    /// last in `init`, after everything that can throw, and freed only by `deinit`.
    private let inbound: UnsafeMutableRawBufferPointer
    private var inboundCount = 0
    /// Our 320 handshake bytes; `outboundSent..<outboundWritten` is still to be sent. Allocated
    /// and freed with `inbound`.
    private let outbound: UnsafeMutableRawBufferPointer
    private var outboundWritten = 0
    private var outboundSent = 0

    /// dk1 = dhmacC || dhmacS while waiting for the peer's y (wiped once used). A server with
    /// several keys holds one dk1 per key, concatenated in the order of `keys`, until the
    /// client's MAC picks one.
    private var handshakeMACKeys: [UInt8] = []
    /// The peer's verified y, kept from completion until `finishKeyAgreement` uses it.
    private var peerPublicValue: [UInt8] = []
    /// True once `finishKeyAgreement` has derived `sessionKeys`.
    private var keyAgreementFinished = false
    /// dk2 = E_C || H_C || E_S || H_S from `finishKeyAgreement` until `makeSession` (then wiped).
    private var sessionKeys: [UInt8] = []
    private var sessionHandedOut = false

    /// Starts a handshake with one key; the nonce is queued for sending at once.
    ///
    /// `nonce` (32 bytes) is injectable for tests; by default it comes from `randomSource`.
    /// `keyPair` is a pair made ahead of time (the proxy's pool, or a fixed one in tests), used
    /// for this handshake only. Without one, a client generates its pair here (2^x mod p:
    /// slow, exponent from `randomSource`), and a server takes one from `keyPairSource` (or
    /// generates it) only once the client's MAC has verified, so a stranger without the key
    /// costs no exponentiation. With `options.fast` no key pair is used (a given one is
    /// ignored). `randomSource` is the kernel unless a test scripts a failure.
    /// Throws `.randomnessUnavailable` when the source cannot supply randomness.
    public convenience init(role: HandshakeRole, key: SpipedKey, options: HandshakeOptions, backend: CryptoBackend = .portable,
                            nonce: [UInt8]? = nil, keyPair: DHKeyPair? = nil, randomSource: RandomSource = .system) throws(SpipedProtocolError) {
        try self.init(role: role, keys: [key], options: options, backend: backend, nonce: nonce, keyPair: keyPair,
                      randomSource: randomSource)
    }

    /// Starts a handshake that accepts any of `keys` (a server: key rotation, routing by key);
    /// a client must pass exactly one key. After completion `authenticatedKeyIndex` says which
    /// key the peer holds. Every key is tried on every handshake, with no early exit, so the
    /// time taken does not tell a stranger which key (if any) came close or how many there are
    /// beyond the count itself. Other parameters as in `init(role:key:...)`.
    public init(role: HandshakeRole, keys: [SpipedKey], options: HandshakeOptions, backend: CryptoBackend = .portable,
                nonce: [UInt8]? = nil, keyPair: DHKeyPair? = nil, randomSource: RandomSource = .system) throws(SpipedProtocolError) {
        precondition(!keys.isEmpty, "a handshake needs at least one key")
        precondition(role == .server || keys.count == 1, "a client holds exactly one key")
        self.randomSource = randomSource
        self.role = role
        self.keys = keys
        self.options = options
        self.backend = backend
        // Everything that can throw comes first, while the buffers `deinit` frees are not yet
        // allocated: a throw before every stored property is set runs no `deinit`, a throw after
        // it would, so nothing here may free what `deinit` frees.
        if let nonce {
            precondition(nonce.count == Handshake.nonceByteCount, "a spiped nonce is 32 bytes")
            ownNonce = nonce
        } else {
            do {
                ownNonce = try randomSource.bytes(Handshake.nonceByteCount)
            } catch {
                throw .randomnessUnavailable
            }
        }
        if options.fast {
            self.keyPair = nil
        } else if let keyPair {
            self.keyPair = keyPair
        } else if role == .server {
            // Taken in publicValueArrived, once the client proved it holds a key.
            self.keyPair = nil
        } else {
            self.keyPair = try Handshake.generateKeyPair(randomSource: randomSource, backend: backend)
        }
        inbound = .allocate(byteCount: Handshake.handshakeByteCount, alignment: 16)
        outbound = .allocate(byteCount: Handshake.handshakeByteCount, alignment: 16)
        append(ownNonce)
    }

    deinit {
        wipeSecrets()
        SecureWipe.wipe(inbound)
        inbound.deallocate()
        outbound.deallocate()
    }

    /// Bytes waiting to be sent to the peer (valid until the next call on this handshake).
    public var pendingOutput: UnsafeRawBufferPointer {
        if phase == .failed { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: outbound[outboundSent..<outboundWritten])
    }

    /// Marks `count` bytes of `pendingOutput` as sent.
    public func consumeOutput(_ count: Int) {
        precondition(count >= 0 && count <= pendingOutput.count, "consumed more handshake output than was pending")
        outboundSent += count
    }

    /// True once the peer's message has verified and ours is queued: nothing more is to be
    /// received, and `makeSession()` (after `pendingOutput` is sent) gives the packet layer.
    public var isComplete: Bool { phase == .complete }

    /// Which of the keys given at start the peer proved it holds (0 for a one-key handshake);
    /// nil until its MAC verified.
    public var authenticatedKeyIndex: Int? { matchedKeyIndex }

    /// True once the session keys have been derived (`finishKeyAgreement()` has run).
    public var isKeyAgreementFinished: Bool { keyAgreementFinished }

    /// Computes the shared secret ySC = y_peer^x mod p (the slow step) and derives the session
    /// keys dk2. Call it once `isComplete` is true, ideally right after `pendingOutput` was
    /// sent, so the peer works on its own exponentiation meanwhile; `makeSession()` calls it
    /// when it has not run yet. Calling it again does nothing. Throws `.alreadyFailed` before
    /// completion or after an earlier error, and the crypto layer's refusal of the peer's y
    /// (already checked on arrival, so not expected); after an error the handshake has failed.
    public func finishKeyAgreement() throws(SpipedProtocolError) {
        guard phase == .complete else { throw .alreadyFailed }
        if keyAgreementFinished { return }
        do {
            try deriveSessionKeys()
        } catch {
            fail()
            throw error
        }
        keyAgreementFinished = true
    }

    /// Feeds received bytes; returns how many were consumed. Consumes nothing past the end of
    /// the handshake (returns 0 once complete). Throws on a bad MAC, a refused public value or
    /// a y = 1 under `requireForwardSecrecy`; after any error every call throws `.alreadyFailed`.
    public func receive(_ bytes: UnsafeRawBufferPointer) throws(SpipedProtocolError) -> Int {
        switch phase {
        case .failed: throw .alreadyFailed
        case .complete: return 0
        case .awaitingNonce, .awaitingPublicValue: break
        }
        var consumed = 0
        do {
            while consumed < bytes.count && (phase == .awaitingNonce || phase == .awaitingPublicValue) {
                let target = phase == .awaitingNonce ? Handshake.nonceByteCount : Handshake.handshakeByteCount
                let take = min(target - inboundCount, bytes.count - consumed)
                (inbound.baseAddress! + inboundCount).copyMemory(from: bytes.baseAddress! + consumed, byteCount: take)
                inboundCount += take
                consumed += take
                if inboundCount == target {
                    if phase == .awaitingNonce {
                        nonceArrived()
                    } else {
                        try publicValueArrived()
                    }
                }
            }
        } catch {
            fail()
            throw error
        }
        return consumed
    }

    /// The peer closed its side; throws `.truncated` unless the handshake completed.
    public func receiveEndOfStream() throws(SpipedProtocolError) {
        switch phase {
        case .complete: return
        case .failed: throw .alreadyFailed
        case .awaitingNonce, .awaitingPublicValue:
            fail()
            throw .truncated
        }
    }

    /// The packet layer for this session, once complete (call once; later calls return nil).
    /// The client seals with (E_C, H_C) and opens with (E_S, H_S); the server the reverse.
    public func makeSession() -> (sealer: PacketSealer, opener: PacketOpener)? {
        guard phase == .complete, !sessionHandedOut else { return nil }
        do {
            try finishKeyAgreement()
        } catch {
            return nil
        }
        sessionHandedOut = true
        defer { SecureWipe.wipe(&sessionKeys) }
        return sessionKeys.withUnsafeBytes { keys in
            let clientCipher = UnsafeRawBufferPointer(rebasing: keys[0..<32])
            let clientMAC = UnsafeRawBufferPointer(rebasing: keys[32..<64])
            let serverCipher = UnsafeRawBufferPointer(rebasing: keys[64..<96])
            let serverMAC = UnsafeRawBufferPointer(rebasing: keys[96..<128])
            let ownKeys = role == .client ? (clientCipher, clientMAC) : (serverCipher, serverMAC)
            let peerKeys = role == .client ? (serverCipher, serverMAC) : (clientCipher, clientMAC)
            let sealer = PacketSealer(keys: PacketKeys(cipherKey: ownKeys.0, authenticationKey: ownKeys.1, backend: backend))
            let opener = PacketOpener(keys: PacketKeys(cipherKey: peerKeys.0, authenticationKey: peerKeys.1, backend: backend))
            return (sealer, opener)
        }
    }

    // MARK: - Steps

    /// nC || nS in wire order (the client's nonce first).
    private func nonces() -> [UInt8] {
        let peerNonce = [UInt8](UnsafeRawBufferPointer(rebasing: inbound[0..<Handshake.nonceByteCount]))
        return role == .client ? ownNonce + peerNonce : peerNonce + ownNonce
    }

    /// Both nonces are known: dk1 = PBKDF2(K, nC || nS, 1, 64) = dhmacC || dhmacS.
    /// The client sends its `y || HMAC(dhmacC, y)` now; the server waits for the client's.
    private func nonceArrived() {
        let salt = nonces()
        handshakeMACKeys = []
        handshakeMACKeys.reserveCapacity(64 * keys.count)
        for key in keys {
            var keyMACKeys = Handshake.pbkdf2(key: key, salt: salt, byteCount: 64, backend: backend)
            handshakeMACKeys.append(contentsOf: keyMACKeys)
            SecureWipe.wipe(&keyMACKeys)
        }
        phase = .awaitingPublicValue
        if role == .client {
            sendPublicValue()
        }
    }

    /// The peer's `y || HMAC` is complete: verify the MAC (constant time) before looking at y,
    /// then check y, then (server) answer. The session keys come later (`finishKeyAgreement`).
    private func publicValueArrived() throws(SpipedProtocolError) {
        let valueStart = Handshake.nonceByteCount
        let tagStart = valueStart + DiffieHellmanGroup14.valueByteCount
        let peerValueBytes = UnsafeRawBufferPointer(rebasing: inbound[valueStart..<tagStart])
        let peerTag = UnsafeRawBufferPointer(rebasing: inbound[tagStart..<Handshake.handshakeByteCount])

        // The peer authenticates y with its own half of dk1: dhmacC for the client, dhmacS for
        // the server. With several keys every candidate's MAC is computed and compared, and
        // the match is folded into masks, so the work and the branches do not depend on which
        // key matched (only "some key matched" decides what happens next).
        let peerMACKeyOffset = role == .client ? 32 : 0
        var expectedTag = [UInt8](repeating: 0, count: HMACSHA256.tagByteCount)
        var matchedMask: UInt = 0
        var matchedIndex: UInt = 0
        for index in 0..<keys.count {
            let base = 64 * index + peerMACKeyOffset
            handshakeMACKeys.withUnsafeBytes { allKeys in
                var mac = HMACSHA256(key: UnsafeRawBufferPointer(rebasing: allKeys[base..<base + 32]), backend: backend)
                mac.update(peerValueBytes)
                expectedTag.withUnsafeMutableBytes { mac.finalize(into: $0) }
                mac.wipe()
            }
            let difference = expectedTag.withUnsafeBytes { ConstantTime.difference($0, peerTag) }
            // All ones when this tag matched (difference == 0) and no earlier one did.
            let equalMask = UInt(bitPattern: (Int(difference) &- 1) >> (Int.bitWidth - 1))
            let firstMatch = equalMask & ~matchedMask
            matchedIndex |= UInt(index) & firstMatch
            matchedMask |= equalMask
        }
        SecureWipe.wipe(&expectedTag)
        guard matchedMask != 0 else {
            throw .handshakeAuthenticationFailed
        }
        let matched = Int(matchedIndex)
        if keys.count > 1 {
            // Keep only the matched key's dk1 (the peer holds that key: no secret from a stranger).
            var selected = Array(handshakeMACKeys[(64 * matched)..<(64 * matched + 64)])
            SecureWipe.wipe(&handshakeMACKeys)
            handshakeMACKeys = selected
            SecureWipe.wipe(&selected)
        }
        matchedKeyIndex = matched

        let peerValue = [UInt8](peerValueBytes)
        // y = 1 is what a -f peer sends; check it first so -g reports the precise reason.
        if options.requireForwardSecrecy && peerValue == Handshake.one {
            throw .forwardSecrecyRequired
        }
        do {
            try DiffieHellmanGroup14.validatePeerValue(peerValue, requireForwardSecrecy: options.requireForwardSecrecy)
        } catch {
            throw Handshake.protocolError(error)
        }

        if role == .server {
            if keyPair == nil && !options.fast {
                // The client proved it holds the key: only now is a key pair worth spending.
                if let pooled = keyPairSource?() {
                    keyPair = pooled
                } else {
                    keyPair = try Handshake.generateKeyPair(randomSource: randomSource, backend: backend)
                }
            }
            sendPublicValue()
        }
        // Both MACs are done: dk1 is no longer needed.
        SecureWipe.wipe(&handshakeMACKeys)
        peerPublicValue = peerValue
        phase = .complete
    }

    /// ySC and dk2 = PBKDF2(K, nC || nS || ySC, 1, 128); drops x, dk1 and the peer's y.
    private func deriveSessionKeys() throws(SpipedProtocolError) {
        let peerValue = peerPublicValue
        // ySC = y_peer ^ x mod p, or 1 when we run fast (the peer then computes 1^x = 1 too).
        var sharedValue: [UInt8]
        if let keyPair {
            do {
                sharedValue = try keyPair.privateExponent.sharedSecret(peerPublicValue: peerValue,
                                                                       requireForwardSecrecy: options.requireForwardSecrecy,
                                                                       backend: backend)
            } catch {
                throw Handshake.protocolError(error)
            }
        } else {
            sharedValue = Handshake.one
        }
        keyPair = nil
        var salt = nonces() + sharedValue
        SecureWipe.wipe(&sharedValue)
        sessionKeys = Handshake.pbkdf2(key: keys[matchedKeyIndex ?? 0], salt: salt, byteCount: 128, backend: backend)
        SecureWipe.wipe(&salt)
        peerPublicValue = []
    }

    /// Queues `y || HMAC(ownMACKey, y)`: dhmacC for the client, dhmacS for the server.
    private func sendPublicValue() {
        guard let value = options.fast ? Handshake.one : keyPair?.publicValue else {
            preconditionFailure("the key pair is dropped only after our y was sent")
        }
        // A client has one key's dk1; a server has only the matched key's left by now.
        let ownMACKeyRange = role == .client ? 0..<32 : 32..<64
        append(value)
        let tagStart = outboundWritten
        handshakeMACKeys.withUnsafeBytes { keys in
            var mac = HMACSHA256(key: UnsafeRawBufferPointer(rebasing: keys[ownMACKeyRange]), backend: backend)
            mac.update(value)
            mac.finalize(into: UnsafeMutableRawBufferPointer(rebasing: outbound[tagStart..<tagStart + HMACSHA256.tagByteCount]))
            mac.wipe()
        }
        outboundWritten += HMACSHA256.tagByteCount
    }

    /// Appends bytes to the outbound buffer.
    private func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { source in
            (outbound.baseAddress! + outboundWritten).copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
        outboundWritten += bytes.count
    }

    /// Moves to the terminal state and drops every secret.
    private func fail() {
        phase = .failed
        keyPair = nil
        wipeSecrets()
    }

    private func wipeSecrets() {
        SecureWipe.wipe(&handshakeMACKeys)
        SecureWipe.wipe(&sessionKeys)
        peerPublicValue = []
    }

    // MARK: - Helpers

    /// A fresh key pair whose exponent x is 32 bytes (256 bits) from `randomSource`, like
    /// `DHKeyPair.generate` (which always uses the kernel). Throws `.randomnessUnavailable`.
    private static func generateKeyPair(randomSource: RandomSource, backend: CryptoBackend) throws(SpipedProtocolError) -> DHKeyPair {
        var exponentBytes: [UInt8]
        do {
            exponentBytes = try randomSource.bytes(DHPrivateExponent.randomByteCount)
        } catch {
            throw .randomnessUnavailable
        }
        defer { SecureWipe.wipe(&exponentBytes) }
        return DHKeyPair(privateExponent: DHPrivateExponent(bigEndianBytes: exponentBytes), backend: backend)
    }

    /// The group element 1 as 256 big-endian bytes: the y a -f side sends and its ySC.
    static let one: [UInt8] = [UInt8](repeating: 0, count: DiffieHellmanGroup14.valueByteCount - 1) + [1]

    /// PBKDF2-HMAC-SHA256(K, salt, 1 iteration). The parameters are fixed and valid, so the
    /// KDF's parameter errors cannot happen here.
    private static func pbkdf2(key: SpipedKey, salt: [UInt8], byteCount: Int, backend: CryptoBackend) -> [UInt8] {
        do {
            return try key.secret.withUnsafeBytes { secret throws(CryptoError) in
                try PBKDF2.sha256(password: secret, salt: salt, iterations: 1, outputByteCount: byteCount, backend: backend)
            }
        } catch {
            preconditionFailure("PBKDF2 refused fixed, valid parameters: \(error)")
        }
    }

    /// Maps a crypto-layer refusal of the peer's y to the protocol error.
    private static func protocolError(_ error: CryptoError) -> SpipedProtocolError {
        switch error {
        case .invalidPublicValue(.one): return .forwardSecrecyRequired
        case .invalidPublicValue(let problem): return .publicValueRejected(problem)
        case .invalidKeyLength, .invalidParameter: return .publicValueRejected(.wrongLength)
        case .randomnessUnavailable: return .randomnessUnavailable
        }
    }
}
