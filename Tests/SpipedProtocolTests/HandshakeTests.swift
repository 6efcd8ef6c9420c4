import Foundation
import SpipedCrypto
@testable import SpipedProtocol
import XCTest

/// The handshake state machine: option combinations, tampering, truncation, chunking and the
/// terminal error state.
final class HandshakeTests: XCTestCase {
    // MARK: - Round trips

    /// Every -f/-g combination on both sides: a -g side facing a -f peer refuses it (the
    /// server before it sends anything keyed, the client after reading the server's y = 1);
    /// every other combination agrees on keys that carry data both ways.
    func testEveryFastAndForwardSecrecyCombination() throws {
        let optionSets = [
            HandshakeOptions(), HandshakeOptions(fast: true), HandshakeOptions(requireForwardSecrecy: true),
            HandshakeOptions(fast: true, requireForwardSecrecy: true),
        ]
        for backend in testBackends {
            for clientOptions in optionSets {
                for serverOptions in optionSets {
                    let context = "client \(clientOptions), server \(serverOptions), backend \(backend.kind)"
                    let client = try makeHandshake(.client, options: clientOptions, backend: backend)
                    let server = try makeHandshake(.server, options: serverOptions, backend: backend)
                    let outcome = exchange(client: client, server: server)
                    if serverOptions.requireForwardSecrecy && clientOptions.fast {
                        XCTAssertEqual(outcome.serverError, .forwardSecrecyRequired, context)
                        XCTAssertEqual(outcome.serverSent.count, 32, "the server must send only its nonce: \(context)")
                        XCTAssertEqual(outcome.clientError, .truncated, context)
                    } else if clientOptions.requireForwardSecrecy && serverOptions.fast {
                        XCTAssertNil(outcome.serverError, context)
                        XCTAssertEqual(outcome.clientError, .forwardSecrecyRequired, context)
                    } else {
                        XCTAssertNil(outcome.clientError, context)
                        XCTAssertNil(outcome.serverError, context)
                        XCTAssertTrue(client.isComplete && server.isComplete, context)
                        XCTAssertEqual(outcome.clientSent.count, 320, context)
                        XCTAssertEqual(outcome.serverSent.count, 320, context)
                        try assertSessionCarriesData(client: client, server: server, context: context)
                    }
                }
            }
        }
    }

    /// A fast side sends exactly y = 1 (255 zero bytes, then 0x01).
    func testFastSideSendsOne() throws {
        let client = try makeHandshake(.client, options: HandshakeOptions(fast: true))
        let server = try makeHandshake(.server)
        let outcome = exchange(client: client, server: server)
        XCTAssertNil(outcome.clientError)
        XCTAssertEqual(Array(outcome.clientSent[32..<288]), [UInt8](repeating: 0, count: 255) + [1])
        XCTAssertEqual(Array(outcome.serverSent[32..<288]), Fixtures.serverKeyPair.publicValue)
    }

    /// Freshly generated nonces and key pairs (kernel randomness) also agree.
    func testRandomNoncesAndGeneratedKeyPairs() throws {
        let key = SpipedKey(fileContents: Fixtures.keyFile)
        let client = try Handshake(role: .client, key: key, options: HandshakeOptions())
        let server = try Handshake(role: .server, key: key, options: HandshakeOptions(), keyPair: try DHKeyPair.generate())
        let outcome = exchange(client: client, server: server)
        XCTAssertNil(outcome.clientError)
        XCTAssertNil(outcome.serverError)
        XCTAssertNotEqual(Array(outcome.clientSent[0..<32]), Array(outcome.serverSent[0..<32]))
        try assertSessionCarriesData(client: client, server: server, context: "random")
    }

    /// Generated pairs are fresh each time and y is 256 bytes.
    func testGeneratedPairsDiffer() throws {
        let first = try DHKeyPair.generate()
        let second = try DHKeyPair.generate()
        XCTAssertEqual(first.publicValue.count, 256)
        XCTAssertNotEqual(first.publicValue, second.publicValue)
    }

    // MARK: - Keys

    func testWrongKeyIsRefusedByTheServerBeforeItSendsAnythingKeyed() throws {
        let client = try makeHandshake(.client, keyFile: Fixtures.otherKeyFile)
        let server = try makeHandshake(.server)
        let outcome = exchange(client: client, server: server)
        XCTAssertEqual(outcome.serverError, .handshakeAuthenticationFailed)
        XCTAssertEqual(outcome.serverSent, Fixtures.serverNonce)
        XCTAssertEqual(outcome.clientError, .truncated)
    }

    // MARK: - Tampering

    /// Flipping one bit at every byte position of the client's 320 bytes (nonce, y, HMAC)
    /// makes the server refuse, having sent nothing but its nonce.
    func testServerRefusesEveryAlteredByteOfTheClientHandshake() throws {
        let reference = try completeExchange()
        for position in 0..<320 {
            var altered = reference.clientSent
            altered[position] ^= UInt8(1) << UInt8(position % 8)
            let server = try makeHandshake(.server)
            _ = takeOutput(server)
            assertThrows(.handshakeAuthenticationFailed, "byte \(position)") { () throws(SpipedProtocolError) in
                try feed(server, altered)
            }
            XCTAssertTrue(server.pendingOutput.isEmpty, "server answered a forged handshake (byte \(position))")
            assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try server.receive(UnsafeRawBufferPointer(start: nil, count: 0)) }
        }
    }

    /// Flipping one bit at every byte position of the server's 320 bytes makes the client refuse.
    func testClientRefusesEveryAlteredByteOfTheServerHandshake() throws {
        let reference = try completeExchange()
        for position in 0..<320 {
            var altered = reference.serverSent
            altered[position] ^= UInt8(0x80) >> UInt8(position % 8)
            let client = try makeHandshake(.client)
            assertThrows(.handshakeAuthenticationFailed, "byte \(position)") { () throws(SpipedProtocolError) in
                try feed(client, altered)
            }
            XCTAssertFalse(client.isComplete)
            XCTAssertNil(client.makeSession())
        }
    }

    /// A correctly authenticated but invalid y (>= p, 0, p - 1) is refused with the reason.
    func testAuthenticatedButInvalidPublicValuesAreRefused() throws {
        let prime = DiffieHellmanGroup14.primeBytes
        var primeMinusOne = prime
        primeMinusOne[255] -= 1
        let cases: [([UInt8], DHPublicValueProblem)] = [
            (prime, .notLessThanPrime),
            ([UInt8](repeating: 0xFF, count: 256), .notLessThanPrime),
            ([UInt8](repeating: 0, count: 256), .zero),
            (primeMinusOne, .primeMinusOne),
        ]
        let key = SpipedKey(fileContents: Fixtures.keyFile)
        let dk1 = try PBKDF2.sha256(password: key.secret.bytes, salt: Fixtures.clientNonce + Fixtures.serverNonce,
                                    iterations: 1, outputByteCount: 64)
        for (value, problem) in cases {
            // As the server: a client message whose HMAC (dhmacC) is right.
            let server = try makeHandshake(.server)
            let clientMessage = Fixtures.clientNonce + value + HMACSHA256.authenticationCode(key: Array(dk1[0..<32]), message: value)
            assertThrows(.publicValueRejected(problem), "server, \(problem)") { () throws(SpipedProtocolError) in
                try feed(server, clientMessage)
            }
            XCTAssertTrue(server.pendingOutput.isEmpty)
            // As the client: a server message whose HMAC (dhmacS) is right.
            let client = try makeHandshake(.client)
            let serverMessage = Fixtures.serverNonce + value + HMACSHA256.authenticationCode(key: Array(dk1[32..<64]), message: value)
            assertThrows(.publicValueRejected(problem), "client, \(problem)") { () throws(SpipedProtocolError) in
                try feed(client, serverMessage)
            }
        }
    }

    /// A server replaying the client's own y || HMAC back (reflection) fails: the halves of dk1 differ.
    func testReflectedPublicValueIsRefused() throws {
        let reference = try completeExchange()
        let client = try makeHandshake(.client)
        let reflected = Fixtures.serverNonce + Array(reference.clientSent[32...])
        assertThrows(.handshakeAuthenticationFailed) { () throws(SpipedProtocolError) in try feed(client, reflected) }
    }

    /// Random bytes in place of a peer's handshake are refused by both roles.
    func testRandomGarbageIsRefused() throws {
        var generator = SplitMix64(seed: 99)
        for round in 0..<20 {
            let garbage = (0..<320).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for role in [HandshakeRole.client, .server] {
                let handshake = try makeHandshake(role)
                assertThrows(.handshakeAuthenticationFailed, "round \(round), \(role)") { () throws(SpipedProtocolError) in
                    try feed(handshake, garbage, chunking: .random(seed: UInt64(round), maximum: 100))
                }
            }
        }
    }

    // MARK: - Truncation

    func testEndOfStreamAtEveryPointBeforeCompletionIsTruncation() throws {
        let reference = try completeExchange()
        for cut in stride(from: 0, to: 320, by: 7) {
            let server = try makeHandshake(.server)
            XCTAssertEqual(try feed(server, Array(reference.clientSent[0..<cut])), cut)
            XCTAssertFalse(server.isComplete)
            assertThrows(.truncated, "cut at \(cut)") { () throws(SpipedProtocolError) in try server.receiveEndOfStream() }
            assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try server.receiveEndOfStream() }
            assertThrows(.alreadyFailed) { () throws(SpipedProtocolError) in try feed(server, [1, 2, 3]) }
            XCTAssertTrue(server.pendingOutput.isEmpty)

            let client = try makeHandshake(.client)
            XCTAssertEqual(try feed(client, Array(reference.serverSent[0..<cut])), cut)
            assertThrows(.truncated, "cut at \(cut)") { () throws(SpipedProtocolError) in try client.receiveEndOfStream() }
        }
    }

    func testEndOfStreamAfterCompletionIsFine() throws {
        let client = try makeHandshake(.client)
        let server = try makeHandshake(.server)
        XCTAssertNil(exchange(client: client, server: server).clientError)
        XCTAssertNoThrow(try client.receiveEndOfStream())
        XCTAssertNoThrow(try server.receiveEndOfStream())
    }

    // MARK: - Chunking

    func testAnyChunkingGivesTheSameBytes() throws {
        let reference = try completeExchange()
        let chunkings: [Chunking] = [.bytewise, .random(seed: 7, maximum: 5), .random(seed: 8, maximum: 64),
                                     .random(seed: 9, maximum: 300)]
        for chunking in chunkings {
            let client = try makeHandshake(.client)
            let server = try makeHandshake(.server)
            let outcome = exchange(client: client, server: server, chunking: chunking)
            XCTAssertNil(outcome.clientError, "\(chunking)")
            XCTAssertNil(outcome.serverError, "\(chunking)")
            XCTAssertEqual(outcome.clientSent, reference.clientSent, "\(chunking)")
            XCTAssertEqual(outcome.serverSent, reference.serverSent, "\(chunking)")
            try assertSessionCarriesData(client: client, server: server, context: "\(chunking)")
        }
    }

    /// `receive` stops at the end of the handshake: what follows is the packet stream.
    func testReceiveStopsAtTheEndOfTheHandshake() throws {
        let reference = try completeExchange()
        let client = try makeHandshake(.client)
        let trailing: [UInt8] = Array(repeating: 0xAB, count: 2000)
        XCTAssertEqual(try feed(client, reference.serverSent + trailing), 320)
        XCTAssertTrue(client.isComplete)
        XCTAssertEqual(try feed(client, trailing), 0)

        let server = try makeHandshake(.server)
        XCTAssertEqual(try feed(server, reference.clientSent + trailing), 320)
        XCTAssertTrue(server.isComplete)
        // The server's final message is still pending after completion: send it before packets.
        XCTAssertEqual(takeOutput(server), reference.serverSent)
    }

    /// The client sends only its nonce until it has the server's nonce, and the server only
    /// its nonce until the client's handshake verified.
    func testMessageOrder() throws {
        let reference = try completeExchange()
        let client = try makeHandshake(.client)
        XCTAssertEqual(takeOutput(client), Fixtures.clientNonce)
        XCTAssertEqual(try feed(client, Array(reference.serverSent[0..<31])), 31)
        XCTAssertTrue(client.pendingOutput.isEmpty)
        XCTAssertEqual(try feed(client, [reference.serverSent[31]]), 1)
        XCTAssertEqual(client.pendingOutput.count, 288)
        client.consumeOutput(100)
        XCTAssertEqual([UInt8](client.pendingOutput), Array(reference.clientSent[132...]))

        let server = try makeHandshake(.server)
        XCTAssertEqual(takeOutput(server), Fixtures.serverNonce)
        XCTAssertEqual(try feed(server, Array(reference.clientSent[0..<319])), 319)
        XCTAssertTrue(server.pendingOutput.isEmpty)
        XCTAssertFalse(server.isComplete)
        XCTAssertEqual(try feed(server, [reference.clientSent[319]]), 1)
        XCTAssertEqual([UInt8](server.pendingOutput), Array(reference.serverSent[32...]))
    }

    /// The server's yS is ready to send before the session keys (y_C^x_S) are computed, so the
    /// proxy can flush it first and both exponentiations overlap; the keys come from an
    /// explicit `finishKeyAgreement()` and still give a working session.
    func testServerAnswerIsReadyBeforeTheKeyAgreement() throws {
        let reference = try completeExchange()
        let server = try makeHandshake(.server)
        XCTAssertEqual(takeOutput(server), Fixtures.serverNonce)
        XCTAssertEqual(try feed(server, reference.clientSent), 320)
        XCTAssertTrue(server.isComplete)
        XCTAssertFalse(server.isKeyAgreementFinished, "no exponentiation before yS is sent")
        XCTAssertEqual(takeOutput(server), Array(reference.serverSent[32...]))
        XCTAssertFalse(server.isKeyAgreementFinished)
        try server.finishKeyAgreement()
        XCTAssertTrue(server.isKeyAgreementFinished)
        try server.finishKeyAgreement()

        let client = try makeHandshake(.client)
        _ = takeOutput(client)
        XCTAssertEqual(try feed(client, reference.serverSent), 320)
        try assertSessionCarriesData(client: client, server: server, context: "explicit finishKeyAgreement")
    }

    /// `finishKeyAgreement()` before completion is refused.
    func testKeyAgreementCannotFinishEarly() throws {
        let server = try makeHandshake(.server)
        XCTAssertThrowsError(try server.finishKeyAgreement())
    }

    // MARK: - Randomness failures

    /// The kernel's randomness fails after the nonce was drawn, before the DH exponent is: the
    /// handshake throws `.randomnessUnavailable` and frees its buffers once (this used to free
    /// them twice and abort the process).
    func testRandomnessFailingAfterTheNonce() throws {
        // A client draws its exponent at start.
        let source = ScriptedRandomSource(successfulFills: 1)
        let key = SpipedKey(fileContents: Fixtures.keyFile)
        XCTAssertThrowsError(try Handshake(role: .client, key: key, options: HandshakeOptions(),
                                           randomSource: source.randomSource)) { error in
            XCTAssertEqual(error as? SpipedProtocolError, .randomnessUnavailable)
        }
        XCTAssertEqual(source.fillCount, 2, "the nonce, then the exponent")

        // A server draws it only once the client authenticated (its pool, if any, is empty here).
        let serverSource = ScriptedRandomSource(successfulFills: 1)
        let server = try Handshake(role: .server, key: key, options: HandshakeOptions(), randomSource: serverSource.randomSource)
        XCTAssertEqual(serverSource.fillCount, 1, "only the nonce at start")
        let outcome = exchange(client: try makeHandshake(.client), server: server)
        XCTAssertEqual(outcome.serverError, .randomnessUnavailable)
        XCTAssertEqual(serverSource.fillCount, 2, "the nonce, then the exponent after the client's MAC")
        XCTAssertEqual(outcome.serverSent.count, 32, "nothing keyed was sent")
    }

    /// Randomness failing at once (the nonce) is reported the same way.
    func testRandomnessFailingAtOnce() {
        let source = ScriptedRandomSource(successfulFills: 0)
        XCTAssertThrowsError(try Handshake(role: .client, key: SpipedKey(fileContents: Fixtures.keyFile),
                                           options: HandshakeOptions(), randomSource: source.randomSource)) { error in
            XCTAssertEqual(error as? SpipedProtocolError, .randomnessUnavailable)
        }
        // A -f handshake draws only the nonce: one good fill is enough.
        let fast = ScriptedRandomSource(successfulFills: 1)
        XCTAssertNoThrow(try Handshake(role: .client, key: SpipedKey(fileContents: Fixtures.keyFile),
                                       options: HandshakeOptions(fast: true), randomSource: fast.randomSource))
    }

    // MARK: - Helpers

    /// A successful exchange with the fixed inputs (its bytes are the reference for tampering).
    private func completeExchange() throws -> ExchangeOutcome {
        let outcome = exchange(client: try makeHandshake(.client), server: try makeHandshake(.server))
        if let error = outcome.clientError ?? outcome.serverError { throw error }
        XCTAssertEqual(outcome.clientSent.count, 320)
        XCTAssertEqual(outcome.serverSent.count, 320)
        return outcome
    }

    /// Both directions carry data with the keys the two sides derived.
    private func assertSessionCarriesData(client: Handshake, server: Handshake, context: String,
                                          file: StaticString = #filePath, line: UInt = #line) throws {
        let clientSession = try XCTUnwrap(client.makeSession(), context, file: file, line: line)
        let serverSession = try XCTUnwrap(server.makeSession(), context, file: file, line: line)
        let upstream = (0..<1500).map { UInt8(truncatingIfNeeded: $0) }
        let downstream: [UInt8] = Array("hello from the server".utf8)
        XCTAssertEqual(try openAll(serverSession.opener, sealAll(clientSession.sealer, upstream)), upstream, context,
                       file: file, line: line)
        XCTAssertEqual(try openAll(clientSession.opener, sealAll(serverSession.sealer, downstream)), downstream, context,
                       file: file, line: line)
    }
}

/// A random source that fills `successfulFills` buffers (with 0x5a) and then fails like a kernel
/// that cannot supply randomness.
private final class ScriptedRandomSource: @unchecked Sendable {
    private let lock = NSLock()
    private let successfulFills: Int
    private var fills = 0

    init(successfulFills: Int) { self.successfulFills = successfulFills }

    /// How many fills were asked for so far.
    var fillCount: Int { lock.withLock { fills } }

    var randomSource: RandomSource {
        RandomSource { [self] buffer throws(CryptoError) in
            let index = lock.withLock { () -> Int in
                fills += 1
                return fills
            }
            guard index <= successfulFills else { throw .randomnessUnavailable(errno: EIO) }
            buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
        }
    }
}
