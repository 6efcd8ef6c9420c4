import SpipedCrypto
@testable import SpipedProtocol
import XCTest

/// A server that accepts several keys (rotation, routing by key), and a server that spends a
/// Diffie-Hellman key pair only on a client that proved it holds a key.
final class MultiKeyHandshakeTests: XCTestCase {
    private let keyFiles: [[UInt8]] = (0..<5).map { seed in (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ seed &* 29 &+ 1) } }

    private func server(keys: [[UInt8]], keyPairSource: (() -> DHKeyPair?)? = nil,
                        options: HandshakeOptions = HandshakeOptions()) throws -> Handshake {
        let handshake = try Handshake(role: .server, keys: keys.map { SpipedKey(fileContents: $0) }, options: options,
                                      nonce: Fixtures.serverNonce, keyPair: nil)
        handshake.keyPairSource = keyPairSource
        return handshake
    }

    /// A client holding any one of the server's keys is served, and the server learns which.
    func testEachConfiguredKeyIsAcceptedAndIdentified() throws {
        let serverKeys = Array(keyFiles[0..<4])
        for (index, keyFile) in serverKeys.enumerated() {
            let client = try makeHandshake(.client, keyFile: keyFile)
            let server = try server(keys: serverKeys, keyPairSource: { Fixtures.serverKeyPair })
            let outcome = exchange(client: client, server: server)
            XCTAssertNil(outcome.clientError, "key \(index)")
            XCTAssertNil(outcome.serverError, "key \(index)")
            XCTAssertEqual(server.authenticatedKeyIndex, index)
            let clientSession = try XCTUnwrap(client.makeSession())
            let serverSession = try XCTUnwrap(server.makeSession())
            let sealed = try sealAll(clientSession.sealer, Array("hello \(index)".utf8))
            XCTAssertEqual(try openAll(serverSession.opener, sealed), Array("hello \(index)".utf8))
            let reply = try sealAll(serverSession.sealer, Array("reply".utf8))
            XCTAssertEqual(try openAll(clientSession.opener, reply), Array("reply".utf8))
        }
    }

    /// A client whose key is not among the server's is refused before the server sends
    /// anything but its nonce, whatever the number of keys.
    func testUnknownKeyIsRefusedWithOnlyTheNonceSent() throws {
        for count in [1, 2, 4] {
            let client = try makeHandshake(.client, keyFile: keyFiles[4])
            let server = try server(keys: Array(keyFiles[0..<count]), keyPairSource: { Fixtures.serverKeyPair })
            let outcome = exchange(client: client, server: server)
            XCTAssertEqual(outcome.serverError, .handshakeAuthenticationFailed, "\(count) keys")
            XCTAssertEqual(outcome.serverSent.count, 32, "\(count) keys")
            XCTAssertNil(server.authenticatedKeyIndex)
        }
    }

    /// The same key listed twice resolves to its first position.
    func testDuplicateKeyMatchesFirstPosition() throws {
        let client = try makeHandshake(.client, keyFile: keyFiles[1])
        let server = try server(keys: [keyFiles[0], keyFiles[1], keyFiles[1]], keyPairSource: { Fixtures.serverKeyPair })
        XCTAssertNil(exchange(client: client, server: server).serverError)
        XCTAssertEqual(server.authenticatedKeyIndex, 1)
    }

    /// A server without a key pair given at start takes one only after the client's MAC
    /// verified: a stranger (wrong key, garbage) makes it take none.
    func testServerTakesKeyPairOnlyAfterTheClientAuthenticated() throws {
        var taken = 0
        let source: () -> DHKeyPair? = {
            taken += 1
            return Fixtures.serverKeyPair
        }
        let stranger = try makeHandshake(.client, keyFile: keyFiles[3])
        let refusing = try server(keys: [keyFiles[0]], keyPairSource: source)
        XCTAssertEqual(exchange(client: stranger, server: refusing).serverError, .handshakeAuthenticationFailed)
        XCTAssertEqual(taken, 0, "no key pair for a client without the key")

        let garbage = try server(keys: [keyFiles[0]], keyPairSource: source)
        XCTAssertThrowsError(try feed(garbage, [UInt8](repeating: 0x5A, count: Handshake.handshakeByteCount)))
        XCTAssertEqual(taken, 0, "no key pair for garbage")

        let holder = try makeHandshake(.client, keyFile: keyFiles[0])
        let serving = try server(keys: [keyFiles[0]], keyPairSource: source)
        let outcome = exchange(client: holder, server: serving)
        XCTAssertNil(outcome.serverError)
        XCTAssertEqual(taken, 1, "one key pair for the key holder")
        XCTAssertEqual(Array(outcome.serverSent[32..<288]), Fixtures.serverKeyPair.publicValue)
    }

    /// With no source (or an empty one) the server generates its pair once authenticated.
    func testServerGeneratesKeyPairWhenNoneIsPooled() throws {
        let client = try makeHandshake(.client, keyFile: keyFiles[0])
        let server = try server(keys: [keyFiles[0]], keyPairSource: { nil })
        let outcome = exchange(client: client, server: server)
        XCTAssertNil(outcome.clientError)
        XCTAssertNil(outcome.serverError)
        XCTAssertEqual(outcome.serverSent.count, 320)
        XCTAssertNotEqual(Array(outcome.serverSent[32..<288]), Fixtures.serverKeyPair.publicValue)
        XCTAssertNotNil(client.makeSession())
    }

    /// A fast server still needs no key pair at all.
    func testFastServerTakesNoKeyPair() throws {
        var taken = 0
        let client = try makeHandshake(.client, keyFile: keyFiles[0])
        let server = try server(keys: [keyFiles[0]], keyPairSource: { taken += 1; return nil }, options: HandshakeOptions(fast: true))
        XCTAssertNil(exchange(client: client, server: server).serverError)
        XCTAssertEqual(taken, 0)
    }
}
