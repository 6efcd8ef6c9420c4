import FuzzSupport
import SpipedCrypto
import SpipedProtocol

/// A fresh session: an in-memory client/server handshake, both with -f (no exponentiation).
/// Returns (client's sealer, server's opener), the client-to-server direction.
public func makeFastSession() -> (sealer: PacketSealer, opener: PacketOpener) {
    do {
        let fast = HandshakeOptions(fast: true)
        let client = try Handshake(role: .client, key: ProtocolFixtures.key, options: fast,
                                   nonce: [UInt8](repeating: 0xc1, count: 32))
        let server = try Handshake(role: .server, key: ProtocolFixtures.key, options: fast,
                                   nonce: [UInt8](repeating: 0x5e, count: 32))
        // Ping-pong until both are done (three exchanges at most).
        for _ in 0..<4 where !(client.isComplete && server.isComplete) {
            try pass(from: client, to: server)
            try pass(from: server, to: client)
        }
        guard let clientSession = client.makeSession(), let serverSession = server.makeSession() else {
            fuzzFailure("in-memory -f handshake did not complete")
        }
        return (clientSession.sealer, serverSession.opener)
    } catch {
        fuzzFailure("in-memory -f handshake failed: \(error)")
    }
}

private func pass(from sender: Handshake, to receiver: Handshake) throws(SpipedProtocolError) {
    let bytes = [UInt8](sender.pendingOutput)
    sender.consumeOutput(bytes.count)
    guard !bytes.isEmpty else { return }
    let consumed = try receive(receiver, bytes[...]).get()
    if consumed != bytes.count { fuzzFailure("handshake consumed \(consumed) of \(bytes.count) bytes") }
}

/// Feeds `stream` to the opener in fuzzer-chosen chunks with a fuzzer-chosen output buffer
/// size (at least 1024 bytes, as the contract requires). Returns the plaintext it released and
/// the error that stopped it, if any.
/// With `packetAligned`, every chunk is exactly one packet (as when the proxy reads packets one
/// by one), so the opener sees each packet in a call of its own.
public func openAll(_ opener: PacketOpener, _ stream: [UInt8], _ input: inout FuzzedInput,
                    packetAligned: Bool = false) -> (plaintext: [UInt8], error: SpipedProtocolError?) {
    var plaintext: [UInt8] = []
    var output = [UInt8](repeating: 0, count: 1024 + Int(input.byte()) * 16)
    var offset = 0
    while offset < stream.count {
        let chunk = min(stream.count - offset, packetAligned ? 1060 : 1 + Int(input.integer(byteCount: 2)) % 3000)
        var chunkOffset = 0
        while chunkOffset < chunk {
            let result: (consumed: Int, produced: Int)
            switch open(opener, stream[(offset + chunkOffset)..<(offset + chunk)], into: &output) {
            case .success(let opened):
                result = opened
            case .failure(let error):
                if case .success = open(opener, stream[...], into: &output) {
                    fuzzFailure("opener accepted input after failing with \(error)")
                }
                return (plaintext, error)
            }
            if result.consumed < 0 || result.consumed > chunk - chunkOffset || result.produced < 0 || result.produced > output.count {
                fuzzFailure("open returned \(result) for \(chunk - chunkOffset) bytes into \(output.count)")
            }
            // Output room is at least 1024 each call, so it must always make progress.
            if result.consumed == 0 && result.produced == 0 { fuzzFailure("open made no progress") }
            plaintext += output[..<result.produced]
            chunkOffset += result.consumed
        }
        offset += chunk
    }
    do {
        try opener.receiveEndOfStream()
        if stream.count % 1060 != 0 { fuzzFailure("end of stream after a partial packet did not throw") }
    } catch {
        if stream.count % 1060 == 0 { fuzzFailure("end of stream at a packet boundary threw \(error)") }
        if error != .truncated { fuzzFailure("end of stream mid-packet threw \(error), not .truncated") }
        return (plaintext, error)
    }
    return (plaintext, nil)
}

/// One fuzz input against the packet opener.
///
/// Input layout: 1 byte of mode — bit 0: sealed packets (else arbitrary bytes); bits 1-7 pick
/// damage in sealed mode — then the rest.
///
/// Arbitrary bytes: no plaintext may ever come out (that would be a forgery), a full 1060-byte
/// packet must fail authentication, and the opener's errors must be final.
///
/// Sealed packets: the client's sealer seals fuzzer-chosen plaintext pieces (one packet each);
/// then one kind of damage is applied to the packet stream — a bit flip, a dropped, duplicated
/// or swapped packet, a truncation, or none. The opener must release exactly the payloads of
/// the whole packets before the first damaged one (all of them when undamaged), nothing forged
/// or reordered, and then fail with `packetAuthenticationFailed` (or `truncated` at the end).
public func fuzzPacketOpener(data: [UInt8]) {
    var input = FuzzedInput(data)
    let mode = input.byte()
    let session = makeFastSession()
    guard mode & 1 == 1 else {
        let stream = input.take(input.remainingCount * 3 / 4)
        let (plaintext, error) = openAll(session.opener, stream, &input)
        if !plaintext.isEmpty { fuzzFailure("arbitrary bytes opened to \(plaintext.count) bytes of plaintext (forgery)") }
        if stream.count >= 1060 && error != .packetAuthenticationFailed {
            fuzzFailure("a 1060-byte arbitrary packet gave \(String(describing: error)), not packetAuthenticationFailed")
        }
        return
    }

    // Seal up to 6 packets of fuzzer-chosen sizes (0...1100 asked: 0 seals nothing, >1024 spills).
    var packets: [[UInt8]] = []
    var payloads: [[UInt8]] = []
    var packetBuffer = [UInt8](repeating: 0, count: 1060)
    for _ in 0..<6 where !input.isExhausted {
        let piece = input.take(Int(input.integer(byteCount: 2)) % 1101)
        var offset = 0
        while offset < piece.count {
            let sealed: (consumed: Int, produced: Int)
            switch seal(session.sealer, piece[offset...], into: &packetBuffer) {
            case .success(let result): sealed = result
            case .failure(let error): fuzzFailure("seal failed: \(error)")
            }
            if sealed.produced != 1060 || sealed.consumed != min(1024, piece.count - offset) {
                fuzzFailure("seal of \(piece.count - offset) bytes into one packet returned \(sealed)")
            }
            packets.append(packetBuffer)
            payloads.append(Array(piece[offset..<(offset + sealed.consumed)]))
            offset += sealed.consumed
        }
    }
    let damage = Int(mode >> 1) % 6
    let where_ = packets.isEmpty ? 0 : Int(input.byte()) % packets.count
    var stream: [[UInt8]] = packets
    var firstDamaged = packets.count   // index of the first packet that must not be delivered
    var expectedError: SpipedProtocolError? = nil
    if !packets.isEmpty {
        switch damage {
        case 1: // flip one bit anywhere in the packet (ciphertext or tag)
            let position = Int(input.integer(byteCount: 2)) % 1060
            stream[where_][position] ^= 1 << (input.byte() & 7)
            firstDamaged = where_
            expectedError = .packetAuthenticationFailed
        case 2: // drop a packet (dropping the last one is a clean truncation at a boundary)
            stream.remove(at: where_)
            firstDamaged = where_
            expectedError = where_ == packets.count - 1 ? nil : .packetAuthenticationFailed
        case 3: // duplicate (replay) a packet right after itself
            stream.insert(packets[where_], at: where_ + 1)
            firstDamaged = where_ + 1
            expectedError = .packetAuthenticationFailed
        case 4: // swap with the next packet
            if where_ + 1 < packets.count {
                stream.swapAt(where_, where_ + 1)
                firstDamaged = where_
                expectedError = .packetAuthenticationFailed
            }
        case 5: // truncate inside a packet
            let cut = 1 + Int(input.integer(byteCount: 2)) % 1059
            stream[where_] = Array(stream[where_][..<cut])
            stream.removeSubrange((where_ + 1)...)
            firstDamaged = where_
            expectedError = .truncated
        default:
            break
        }
    }
    let flat = stream.flatMap { $0 }
    let packetAligned = input.bool()
    let (plaintext, error) = openAll(session.opener, flat, &input, packetAligned: packetAligned)
    let expected = payloads[..<firstDamaged].flatMap { $0 }
    // Always: the output is the payloads of some whole packets before the damage, in order.
    var wholePacketPrefixes = [0]
    for payload in payloads[..<firstDamaged] { wholePacketPrefixes.append(wholePacketPrefixes.last! + payload.count) }
    if !wholePacketPrefixes.contains(plaintext.count) || Array(expected[..<min(plaintext.count, expected.count)]) != plaintext {
        fuzzFailure("damage \(damage) at packet \(where_): opener released \(plaintext.count) bytes that are not whole verified packets of the \(expected.count) before the damage (forgery or reorder)")
    }
    // A packet that verified is released even when a later one fails. The opener may drop
    // verified payloads of the same `open` call when a later packet in it fails (the error
    // wins), so exactness is required when each call holds one packet, or without a failure.
    if (packetAligned || expectedError != .packetAuthenticationFailed) && plaintext != expected {
        fuzzFailure("damage \(damage) at packet \(where_): opener released \(plaintext.count) bytes, expected all \(expected.count) before the damage")
    }
    if error != expectedError {
        fuzzFailure("damage \(damage) at packet \(where_): opener ended with \(String(describing: error)), expected \(String(describing: expectedError))")
    }
}
