import SpipedCrypto
@testable import SpipedProtocol
import XCTest

/// Reproduces, byte for byte, the sessions computed independently by
/// `Vectors/protocol/gen_transcript.py` (Python hashlib/hmac/pow + cryptography's AES-CTR).
final class TranscriptTests: XCTestCase {
    func testEverySessionMatchesTheIndependentTranscript() throws {
        let transcript = try TranscriptFile.load()
        XCTAssertEqual(transcript.sessions.map(\.name), ["normal", "fast-client", "fast-server", "fast-both"])
        for backend in testBackends {
            for session in transcript.sessions {
                try check(session, backend: backend, chunking: .whole)
            }
        }
    }

    func testTranscriptFedOneByteAtATimeAndInRandomSplits() throws {
        let session = try XCTUnwrap(TranscriptFile.load().sessions.first { $0.name == "normal" })
        for backend in testBackends {
            try check(session, backend: backend, chunking: .bytewise)
            for seed in 1...3 {
                try check(session, backend: backend, chunking: .random(seed: UInt64(seed), maximum: 1500))
            }
        }
    }

    /// Runs both sides from the session's inputs and compares every byte each one writes.
    private func check(_ session: TranscriptFile.Session, backend: CryptoBackend, chunking: Chunking) throws {
        let context = "session \(session.name), backend \(backend.kind), chunking \(chunking)"
        let key = SpipedKey(fileContents: try session.bytes("KEYFILE"), backend: backend)
        XCTAssertEqual(key.secret.bytes, try session.bytes("K"), context)

        let client = try Handshake(
            role: .client, key: key, options: HandshakeOptions(fast: try session.flag("FAST_CLIENT")), backend: backend,
            nonce: try session.bytes("NONCE_CLIENT"),
            keyPair: DHKeyPair(privateExponent: DHPrivateExponent(bigEndianBytes: try session.bytes("EXPONENT_CLIENT"))))
        let server = try Handshake(
            role: .server, key: key, options: HandshakeOptions(fast: try session.flag("FAST_SERVER")), backend: backend,
            nonce: try session.bytes("NONCE_SERVER"),
            keyPair: DHKeyPair(privateExponent: DHPrivateExponent(bigEndianBytes: try session.bytes("EXPONENT_SERVER"))))
        let clientHandshake = try session.bytes("CLIENT_HANDSHAKE")
        let serverHandshake = try session.bytes("SERVER_HANDSHAKE")

        // Each side sends its nonce at once, nothing more.
        XCTAssertEqual(takeOutput(client), Array(clientHandshake[0..<32]), context)
        XCTAssertEqual(takeOutput(server), Array(serverHandshake[0..<32]), context)
        // The client answers the server's nonce with y || HMAC.
        XCTAssertEqual(try feed(client, Array(serverHandshake[0..<32]), chunking: chunking), 32, context)
        XCTAssertEqual(takeOutput(client), Array(clientHandshake[32...]), context)
        // The server answers the client's whole handshake with its y || HMAC.
        XCTAssertEqual(try feed(server, clientHandshake, chunking: chunking), 320, context)
        XCTAssertEqual(takeOutput(server), Array(serverHandshake[32...]), context)
        XCTAssertTrue(server.isComplete, context)
        XCTAssertEqual(try feed(client, Array(serverHandshake[32...]), chunking: chunking), 288, context)
        XCTAssertTrue(client.isComplete, context)
        XCTAssertTrue(client.pendingOutput.isEmpty && server.pendingOutput.isEmpty, context)

        let clientSession = try XCTUnwrap(client.makeSession(), context)
        let serverSession = try XCTUnwrap(server.makeSession(), context)
        XCTAssertNil(client.makeSession(), "makeSession hands the keys out once")

        var counts = ["c2s": 0, "s2c": 0]
        for message in session.messages {
            let (sealer, opener) = message.direction == "c2s"
                ? (clientSession.sealer, serverSession.opener) : (serverSession.sealer, clientSession.opener)
            XCTAssertEqual(try sealAll(sealer, message.plaintext), message.packets,
                           "\(context): \(message.direction) message of \(message.plaintext.count) bytes")
            XCTAssertEqual(try openAll(opener, message.packets, chunking: chunking), message.plaintext,
                           "\(context): \(message.direction) message of \(message.plaintext.count) bytes")
            counts[message.direction, default: 0] += 1
        }
        XCTAssertEqual(counts, ["c2s": 6, "s2c": 5], context)
        XCTAssertNoThrow(try clientSession.opener.receiveEndOfStream())
        XCTAssertNoThrow(try serverSession.opener.receiveEndOfStream())
    }
}

/// Names the backends the protocol tests ran with, in the test log.
final class BackendCoverageTests: XCTestCase {
    func testBackendsUnderTest() {
        print("SpipedProtocolTests backends: \(testBackends.map(\.kind.rawValue))")
        XCTAssertEqual(testBackends.first?.kind, .portable)
    }
}
