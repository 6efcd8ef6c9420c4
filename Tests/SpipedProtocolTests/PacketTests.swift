import SpipedCrypto
import SpipedCryptoAccelerated
@testable import SpipedProtocol
import XCTest

/// The packet layer: sizes, batching, chunking, tampering, replay/drop/reorder, truncation,
/// invalid lengths and counter exhaustion.
final class PacketTests: XCTestCase {
    private let cipherKey: [UInt8] = (0..<32).map { UInt8($0 &+ 100) }
    private let macKey: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ 1) }

    private func pair(_ backend: CryptoBackend = .portable, firstPacketNumber: UInt64 = 0) -> (PacketSealer, PacketOpener) {
        let keys = PacketKeys(cipherKey: cipherKey, authenticationKey: macKey, backend: backend)
        return (PacketSealer(keys: keys, firstPacketNumber: firstPacketNumber),
                PacketOpener(keys: keys, firstPacketNumber: firstPacketNumber))
    }

    private func message(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    // MARK: - Sizes and batching

    func testPacketSizesAndRoundTrips() throws {
        for backend in testBackends {
            let (sealer, opener) = pair(backend)
            for size in [1, 2, 15, 16, 17, 1023, 1024, 1025, 2048, 2049, 10_000] {
                let plaintext = message(size, seed: UInt64(size))
                let packets = try sealAll(sealer, plaintext)
                XCTAssertEqual(packets.count, (size + 1023) / 1024 * 1060, "size \(size)")
                XCTAssertEqual(try openAll(opener, packets), plaintext, "size \(size), backend \(backend.kind)")
            }
        }
    }

    /// `seal` fills as many whole packets as fit and never writes a partial one.
    func testSealStopsAtTheOutputBuffersWholePackets() throws {
        let (sealer, opener) = pair()
        let plaintext = message(5000)
        var output = [UInt8](repeating: 0, count: 3 * 1060 + 1059)
        let first = try output.withUnsafeMutableBytes { out in
            plaintext.withUnsafeBytes { input in Result { () throws(SpipedProtocolError) in try sealer.seal(input, into: out) } }
        }.get()
        XCTAssertEqual(first.consumed, 3 * 1024)
        XCTAssertEqual(first.produced, 3 * 1060)
        var wire = Array(output[0..<first.produced])
        var tiny = [UInt8](repeating: 0, count: 1059)
        let small = try tiny.withUnsafeMutableBytes { out in
            plaintext.withUnsafeBytes { input in Result { () throws(SpipedProtocolError) in try sealer.seal(input, into: out) } }
        }.get()
        XCTAssertEqual(small.consumed, 0)
        XCTAssertEqual(small.produced, 0)
        wire += try sealAll(sealer, Array(plaintext[first.consumed...]))
        XCTAssertEqual(try openAll(opener, wire), plaintext)
    }

    /// `open` stops when the output has no room for another 1024 bytes and resumes later.
    func testOpenStopsWhenOutputIsFull() throws {
        let (sealer, opener) = pair()
        let plaintext = message(4096)
        let wire = try sealAll(sealer, plaintext)
        XCTAssertEqual(try openAll(opener, wire, outputRoom: 1024), plaintext)
        let (sealer2, opener2) = pair()
        let wire2 = try sealAll(sealer2, plaintext)
        var output = [UInt8](repeating: 0, count: 1023)
        let none = try output.withUnsafeMutableBytes { out in
            wire2.withUnsafeBytes { input in Result { () throws(SpipedProtocolError) in try opener2.open(input, into: out) } }
        }.get()
        XCTAssertEqual(none.consumed, 0)
        XCTAssertEqual(none.produced, 0)
    }

    func testEmptyInputsDoNothing() throws {
        let (sealer, opener) = pair()
        XCTAssertEqual(try sealAll(sealer, []), [])
        XCTAssertEqual(try openAll(opener, []), [])
        XCTAssertNoThrow(try opener.receiveEndOfStream())
    }

    // MARK: - Chunking

    func testOpenAcceptsAnyChunking() throws {
        let plaintext = message(7 * 1024 + 300)
        let chunkings: [Chunking] = [.bytewise, .random(seed: 1, maximum: 7), .random(seed: 2, maximum: 1100),
                                     .random(seed: 3, maximum: 4000), .whole]
        for backend in testBackends {
            for chunking in chunkings {
                let (sealer, opener) = pair(backend)
                XCTAssertEqual(try openAll(opener, sealAll(sealer, plaintext), chunking: chunking), plaintext, "\(chunking)")
            }
        }
    }

    // MARK: - Tampering, replay, drop, reorder

    /// One flipped bit at every byte position of a packet is refused before decryption.
    func testEveryAlteredBytePositionIsRefused() throws {
        let (sealer, _) = pair()
        let packet = try sealAll(sealer, message(700))
        for position in 0..<1060 {
            var altered = packet
            altered[position] ^= UInt8(1) << UInt8(position % 8)
            let (_, opener) = pair()
            assertThrows(.packetAuthenticationFailed, "byte \(position)") { () throws(SpipedProtocolError) in
                try openAll(opener, altered)
            }
            assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try openAll(opener, packet) }
            assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try opener.receiveEndOfStream() }
        }
    }

    func testReplayedDroppedAndReorderedPacketsAreRefused() throws {
        let (sealer, _) = pair()
        let packets = try (0..<3).map { index throws(SpipedProtocolError) in try sealAll(sealer, message(100, seed: UInt64(index))) }
        let cases: [(String, [UInt8])] = [
            ("replayed", packets[0] + packets[0]),
            ("dropped", packets[0] + packets[2]),
            ("reordered", packets[1] + packets[0]),
        ]
        for (name, wire) in cases {
            let (_, opener) = pair()
            assertThrows(.packetAuthenticationFailed, name) { () throws(SpipedProtocolError) in try openAll(opener, wire) }
        }
        // The other direction's keys (or another session's) do not open a packet either.
        let other = PacketOpener(cipherKey: cipherKey, authenticationKey: cipherKey)
        assertThrows(.packetAuthenticationFailed) { () throws(SpipedProtocolError) in try openAll(other, packets[0]) }
    }

    /// Verified packets that precede a bad one in the same call are delivered first; the error
    /// comes with the next call, and nothing after the bad packet is ever opened.
    func testPacketsBeforeTheDamageInOneCallAreDelivered() throws {
        let (sealer, _) = pair()
        let first = message(100, seed: 1), second = message(200, seed: 2)
        let packets = [try sealAll(sealer, first), try sealAll(sealer, second)]
        let wire = packets[0] + packets[1] + packets[1] + packets[0]  // two good, then a replay
        let (_, opener) = pair()
        let result = try openOnce(opener, wire)
        XCTAssertEqual(result.consumed, 2 * 1060, "consumption stops at the bad packet")
        XCTAssertEqual(result.plaintext, first + second)
        assertThrows(.packetAuthenticationFailed) { () throws(SpipedProtocolError) in
            _ = try openOnce(opener, Array(wire[2120...]))
        }
        assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try opener.receiveEndOfStream() }
        // The same damage seen at end of stream instead of at another read.
        let (_, late) = pair()
        XCTAssertEqual(try openOnce(late, wire).plaintext, first + second)
        assertThrows(.packetAuthenticationFailed) { () throws(SpipedProtocolError) in try late.receiveEndOfStream() }
    }

    /// `open` computes the MACs of two whole packets side by side, then opens them one at a
    /// time: when the first of such a pair verifies and the second does not, the first one's
    /// plaintext is delivered and the error comes with the next call; when the first fails,
    /// nothing of the pair is delivered.
    func testFailureInsideAPairOfPackets() throws {
        for backend in testBackends {
            let (sealer, _) = pair(backend)
            let payloads = (0..<3).map { message(300 + $0, seed: UInt64(10 + $0)) }
            let packets = try payloads.map { payload throws(SpipedProtocolError) in try sealAll(sealer, payload) }
            let cases: [(name: String, wire: [UInt8], delivered: [UInt8])] = [
                ("second of the first pair replayed", packets[0] + packets[0], payloads[0]),
                ("second of the second pair replayed", packets[0] + packets[1] + packets[2] + packets[1],
                 payloads[0] + payloads[1] + payloads[2]),
                ("first of the second pair dropped", packets[0] + packets[1] + packets[0] + packets[2],
                 payloads[0] + payloads[1]),
                ("first of the first pair dropped", packets[1] + packets[2], []),
            ]
            for (name, wire, delivered) in cases {
                let context = "\(name), backend \(backend.kind)"
                let (_, opener) = pair(backend)
                if delivered.isEmpty {
                    assertThrows(.packetAuthenticationFailed, context) { () throws(SpipedProtocolError) in
                        _ = try openOnce(opener, wire)
                    }
                } else {
                    let result = try openOnce(opener, wire)
                    XCTAssertEqual(result.plaintext, delivered, context)
                    XCTAssertEqual(result.consumed, delivered.count / 300 * 1060, context)
                    assertThrows(.packetAuthenticationFailed, context) { () throws(SpipedProtocolError) in
                        _ = try openOnce(opener, Array(wire[result.consumed...]))
                    }
                }
                assertThrows(.alreadyFailed, context) { () throws(SpipedProtocolError) in try opener.receiveEndOfStream() }
            }

            // An authentic packet with a bad length field, second or first in a pair.
            let good = forgePacket(payload: [7, 8, 9], lengthField: 3, packetNumber: 0)
            let goodSecond = forgePacket(payload: [7, 8, 9], lengthField: 3, packetNumber: 1)
            let badSecond = forgePacket(payload: [1], lengthField: 1025, packetNumber: 1)
            let (_, opener) = pair(backend)
            let result = try openOnce(opener, good + badSecond)
            XCTAssertEqual(result.plaintext, [7, 8, 9], "backend \(backend.kind)")
            XCTAssertEqual(result.consumed, 1060)
            assertThrows(.invalidPacketLength(1025)) { () throws(SpipedProtocolError) in try opener.receiveEndOfStream() }
            let (_, other) = pair(backend)
            assertThrows(.invalidPacketLength(0)) { () throws(SpipedProtocolError) in
                _ = try openOnce(other, forgePacket(payload: [1], lengthField: 0, packetNumber: 0) + goodSecond)
            }
        }
    }

    /// Sealing many packets in one call (two at a time) gives the same bytes as sealing them one
    /// call per packet, on every backend, for payload sizes that end a pair or leave one over.
    func testSealingInOneCallMatchesSealingPacketByPacket() throws {
        for backend in testBackends {
            for size in [2048, 2049, 3000, 4096, 5121] {
                let plaintext = message(size, seed: UInt64(size))
                let (batched, opener) = pair(backend)
                let (single, _) = pair(backend)
                var oneByOne: [UInt8] = []
                for start in stride(from: 0, to: size, by: 1024) {
                    oneByOne += try sealAll(single, Array(plaintext[start..<min(start + 1024, size)]))
                }
                let wire = try sealAll(batched, plaintext)
                XCTAssertEqual(wire, oneByOne, "size \(size), backend \(backend.kind)")
                XCTAssertEqual(try openAll(opener, wire), plaintext, "size \(size), backend \(backend.kind)")
            }
        }
    }

    /// The protocol backends plus, for each multi-stream SHA-256 engine this CPU runs, the
    /// hardware backend (or portable, without SHA-NI) with that engine plugged in.
    private var batchBackends: [CryptoBackend] {
        let base = CryptoBackendSelection.hardwareIfAvailable ?? .portable
        return testBackends + SHA256MultiStream.all.filter(\.isSupported).map { engine in
            CryptoBackend(kind: .hardware, sha256Compress: base.sha256Compress, sha256Compress2: base.sha256Compress2,
                          sha256CompressMany: engine.compress, sha256Lanes: engine.lanes, aes256: base.aes256)
        }
    }

    /// Batches of every size 1...19 (the widest engine's 16 lanes + 3, so every full group,
    /// remainder and the sealer's 16-packet batch limit are crossed) seal in one call to the same
    /// bytes as portable sealing one packet per call, and open in one call; a packet damaged
    /// inside a batch stops opening there, with the packets before it delivered.
    func testBatchesOfEverySizeMatchOnePacketAtATime() throws {
        for backend in batchBackends {
            let lanes = backend.sha256Lanes
            for packetCount in 1...19 {
                let size = 1024 * (packetCount - 1) + 1 + (packetCount * 37) % 1024
                let plaintext = message(size, seed: UInt64(1000 + packetCount))
                let (batched, opener) = pair(backend)
                let (single, _) = pair(.portable)
                var oneByOne: [UInt8] = []
                for start in stride(from: 0, to: size, by: 1024) {
                    oneByOne += try sealAll(single, Array(plaintext[start..<min(start + 1024, size)]))
                }
                let wire = try sealAll(batched, plaintext)
                let context = "\(packetCount) packets, backend \(backend.kind) lanes \(lanes)"
                XCTAssertEqual(wire, oneByOne, context)
                let opened = try openOnce(opener, wire)
                XCTAssertEqual(opened.plaintext, plaintext, context)
                XCTAssertEqual(opened.consumed, wire.count, context)

                guard packetCount >= 2 else { continue }
                // Damage the last packet's tag: all before it are delivered, then the error.
                var damaged = wire
                damaged[damaged.count - 1] ^= 1
                let (_, damagedOpener) = pair(backend)
                let partial = try openOnce(damagedOpener, damaged)
                XCTAssertEqual(partial.plaintext, Array(plaintext[0..<(1024 * (packetCount - 1))]), context)
                XCTAssertEqual(partial.consumed, 1060 * (packetCount - 1), context)
                assertThrows(.packetAuthenticationFailed, context) { () throws(SpipedProtocolError) in
                    try damagedOpener.receiveEndOfStream()
                }
            }
        }
    }

    /// One `open` call over all of `wire`.
    private func openOnce(_ opener: PacketOpener, _ wire: [UInt8]) throws(SpipedProtocolError) -> (consumed: Int, plaintext: [UInt8]) {
        var output = [UInt8](repeating: 0, count: 64 * 1024)
        let result = wire.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in Result { () throws(SpipedProtocolError) in try opener.open(input, into: out) } }
        }
        let opened = try result.get()
        return (opened.consumed, Array(output[0..<opened.produced]))
    }

    /// Random bytes never open (and never crash the opener), whatever the chunking.
    func testRandomGarbageIsRefused() {
        for seed in 1...50 {
            let garbage = message(1060 + Int(seed) * 37, seed: UInt64(seed) &* 7919)
            let (_, opener) = pair()
            assertThrows(.packetAuthenticationFailed, "seed \(seed)") { () throws(SpipedProtocolError) in
                try openAll(opener, garbage, chunking: .random(seed: UInt64(seed), maximum: 1500))
            }
        }
    }

    // MARK: - Truncation

    func testEndOfStreamMidPacketIsTruncation() throws {
        let (sealer, _) = pair()
        let wire = try sealAll(sealer, message(2000))
        for cut in [1, 500, 1059, 1061, 2119] {
            let (_, opener) = pair()
            _ = try openAll(opener, Array(wire[0..<cut]))
            assertThrows(.truncated, "cut at \(cut)") { () throws(SpipedProtocolError) in try opener.receiveEndOfStream() }
            assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try openAll(opener, Array(wire[cut...])) }
        }
        let (_, opener) = pair()
        XCTAssertEqual(try openAll(opener, Array(wire[0..<1060])).count, 1024)
        XCTAssertNoThrow(try opener.receiveEndOfStream())
    }

    // MARK: - Length field

    /// A packet with a valid MAC but a length of 0 or above 1024 is refused with that length.
    func testAuthenticatedPacketsWithInvalidLengthsAreRefused() throws {
        for length: UInt32 in [0, 1025, 0xFFFF_FFFF] {
            let packet = forgePacket(payload: [1, 2, 3], lengthField: length, packetNumber: 0)
            let (_, opener) = pair()
            assertThrows(.invalidPacketLength(length), "length \(length)") { () throws(SpipedProtocolError) in
                try openAll(opener, packet)
            }
        }
        // The forging helper itself produces a packet the opener accepts when the length is right.
        let (_, opener) = pair()
        XCTAssertEqual(try openAll(opener, forgePacket(payload: [1, 2, 3], lengthField: 3, packetNumber: 0)), [1, 2, 3])
    }

    /// Builds a packet by hand from the spec with an arbitrary length field.
    private func forgePacket(payload: [UInt8], lengthField: UInt32, packetNumber: UInt64) -> [UInt8] {
        var padded = payload + [UInt8](repeating: 0, count: 1024 - payload.count)
        padded += [UInt8(lengthField >> 24), UInt8(lengthField >> 16 & 0xFF), UInt8(lengthField >> 8 & 0xFF), UInt8(lengthField & 0xFF)]
        var counterBlock = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 { counterBlock[index] = UInt8(packetNumber >> (56 - 8 * UInt64(index)) & 0xFF) }
        var ciphertext = [UInt8](repeating: 0, count: 1028)
        let aes = try! AES256Key(key: cipherKey)
        padded.withUnsafeBytes { input in
            ciphertext.withUnsafeMutableBytes { output in aes.ctrXor(initialCounterBlock: counterBlock, input: input, output: output) }
        }
        let tag = HMACSHA256.authenticationCode(key: macKey, message: ciphertext + Array(counterBlock[0..<8]))
        return ciphertext + tag
    }

    // MARK: - Counter exhaustion

    func testPacketCounterExhaustion() throws {
        for backend in testBackends {
            try checkPacketCounterExhaustion(backend)
        }
    }

    /// Near the counter's end: the last two numbers are sealed and opened as a pair, the
    /// 2^64-th packet is refused both ways, and a call that crosses the end stops there.
    private func checkPacketCounterExhaustion(_ backend: CryptoBackend) throws {
        let (sealer, opener) = pair(backend, firstPacketNumber: UInt64.max - 1)
        // Packets 2^64 - 2 and 2^64 - 1 are fine.
        let last = try sealAll(sealer, message(2048))
        XCTAssertEqual(last.count, 2 * 1060)
        XCTAssertEqual(try openAll(opener, last), message(2048))
        assertThrows(.packetCounterExhausted) { () throws(SpipedProtocolError) in try sealAll(sealer, [1]) }
        assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try sealAll(sealer, [1]) }
        // A 2^64-th packet (any bytes) cannot be received.
        assertThrows(.packetCounterExhausted) { () throws(SpipedProtocolError) in try openAll(opener, Array(last[0..<1060])) }

        // A seal call that crosses the end returns the packets it could make; the next call throws.
        let (crossing, _) = pair(backend, firstPacketNumber: UInt64.max)
        var output = [UInt8](repeating: 0, count: 3 * 1060)
        let result = try output.withUnsafeMutableBytes { out in
            message(3000).withUnsafeBytes { input in Result { () throws(SpipedProtocolError) in try crossing.seal(input, into: out) } }
        }.get()
        XCTAssertEqual(result.consumed, 1024)
        XCTAssertEqual(result.produced, 1060)
        assertThrows(.packetCounterExhausted) { () throws(SpipedProtocolError) in try sealAll(crossing, [1]) }

        // The same with the last two packets made as a pair: the call stops after them.
        let (pairCrossing, pairOpener) = pair(backend, firstPacketNumber: UInt64.max - 1)
        let pairResult = try output.withUnsafeMutableBytes { out in
            message(3000).withUnsafeBytes { input in Result { () throws(SpipedProtocolError) in try pairCrossing.seal(input, into: out) } }
        }.get()
        XCTAssertEqual(pairResult.consumed, 2048)
        XCTAssertEqual(pairResult.produced, 2 * 1060)
        XCTAssertEqual(Array(output[0..<2120]), last)
        assertThrows(.packetCounterExhausted) { () throws(SpipedProtocolError) in try sealAll(pairCrossing, [1]) }
        // An opener given the last pair and one more packet in one call delivers the pair; the
        // extra packet is refused afterwards.
        let opened = try openOnce(pairOpener, last + Array(last[0..<1060]))
        XCTAssertEqual(opened.plaintext, message(2048))
        XCTAssertEqual(opened.consumed, 2 * 1060)
        assertThrows(.packetCounterExhausted) { () throws(SpipedProtocolError) in try pairOpener.receiveEndOfStream() }
    }

    /// The public raw-key initializers build the same packets as the internal ones.
    func testRawKeyInitializers() throws {
        let sealer = PacketSealer(cipherKey: cipherKey, authenticationKey: macKey)
        let opener = PacketOpener(cipherKey: cipherKey, authenticationKey: macKey)
        let (reference, _) = pair()
        let plaintext = message(3000)
        let wire = try sealAll(sealer, plaintext)
        XCTAssertEqual(wire, try sealAll(reference, plaintext))
        XCTAssertEqual(try openAll(opener, wire), plaintext)
    }
}
