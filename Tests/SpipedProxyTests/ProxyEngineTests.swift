import Foundation
import Glibc
import SpipedProtocol
@testable import SpipedProxy
import SpipedSystem
import XCTest

/// The proxy engine in-process: a client → encrypt proxy (-e) → decrypt proxy (-d) → test
/// target, with the real protocol core.
final class ProxyEngineTests: XCTestCase {
    /// Starts target, decrypt proxy and encrypt proxy; returns them (stop in reverse order).
    private func chain(target: TestServer, encryptKey: SpipedKey = TestProxies.keyA, fast: Bool = true,
                       log: LogRecorder? = nil, configureEncrypt: (inout ProxyConfiguration) -> Void = { _ in },
                       configureDecrypt: (inout ProxyConfiguration) -> Void = { _ in }) throws -> (decrypt: RunningProxy, encrypt: RunningProxy) {
        var decryptConfiguration = TestProxies.configuration(.decrypt, target: target.spec, fast: fast, log: log)
        configureDecrypt(&decryptConfiguration)
        let decrypt = try RunningProxy(decryptConfiguration)
        var encryptConfiguration = TestProxies.configuration(.encrypt, target: decrypt.spec, key: encryptKey, fast: fast, log: log)
        configureEncrypt(&encryptConfiguration)
        let encrypt = try RunningProxy(encryptConfiguration)
        return (decrypt, encrypt)
    }

    func testMovesSeveralMegabytesBothWaysOverTCP() throws {
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let (decrypt, encrypt) = try chain(target: target)
        defer { encrypt.stop(); decrypt.stop() }

        let payload = TestNetwork.randomBytes(4 << 20)
        let client = try TestNetwork.connect(to: encrypt.address)
        defer { client.close() }
        let sender = try SystemThread(name: "test-sender") {
            try? TestNetwork.send(payload, to: client)
            _ = client.shutdownResult(.write)
        }
        let echoed = try TestNetwork.receiveAll(from: client)
        sender.join()
        XCTAssertEqual(echoed.count, payload.count)
        XCTAssertTrue(echoed == payload, "echoed bytes differ")
        XCTAssertEqual(target.acceptedCount, 1)
    }

    func testManyConcurrentConnectionsKeepTheirOwnBytes() throws {
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let (decrypt, encrypt) = try chain(target: target, configureEncrypt: { $0.maxConnections = 0 },
                                           configureDecrypt: { $0.maxConnections = 0 })
        defer { encrypt.stop(); decrypt.stop() }
        let mismatches = LockedCounter()
        let pool = TestNetwork.randomBytes(200_000)
        let clients = try (0..<40).map { index in
            try SystemThread(name: "test-client") {
                // Each client sends a different slice, of a different length.
                let payload = Array(pool[(index * 997)..<(index * 997 + 20_000 + index * 1_500)])
                do {
                    let client = try TestNetwork.connect(to: encrypt.address, receiveTimeout: 30)
                    defer { client.close() }
                    let sender = try SystemThread(name: "test-sender") {
                        try? TestNetwork.send(payload, to: client)
                        _ = client.shutdownResult(.write)
                    }
                    let echoed = try TestNetwork.receiveAll(from: client)
                    sender.join()
                    if echoed != payload { mismatches.add(1) }
                } catch {
                    mismatches.add(1)
                }
            }
        }
        clients.forEach { $0.join() }
        XCTAssertEqual(mismatches.value, 0)
        XCTAssertEqual(target.acceptedCount, 40)
    }

    func testFullHandshakeWithDiffieHellman() throws {
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let (decrypt, encrypt) = try chain(target: target, fast: false)
        defer { encrypt.stop(); decrypt.stop() }
        for round in 0..<2 {
            let client = try TestNetwork.connect(to: encrypt.address)
            defer { client.close() }
            let message = Array("round \(round) with forward secrecy".utf8)
            try TestNetwork.send(message, to: client)
            _ = client.shutdownResult(.write)
            XCTAssertEqual(try TestNetwork.receiveAll(from: client), message)
        }
    }

    func testUnixSocketSourcesAndTargetAndSocketFileRemoval() throws {
        let directory = try TestNetwork.temporaryDirectory()
        let target = try TestServer(.unix(path: directory + "/target.sock"), handler: TestServer.echo)
        defer { target.stop() }
        let decrypt = try RunningProxy(TestProxies.configuration(.decrypt, source: .unix(path: directory + "/decrypt.sock"), target: target.spec))
        let encrypt = try RunningProxy(TestProxies.configuration(.encrypt, source: .unix(path: directory + "/encrypt.sock"), target: decrypt.spec))

        let payload = TestNetwork.randomBytes(300_000)
        let client = try TestNetwork.connect(to: encrypt.address)
        let sender = try SystemThread(name: "test-sender") {
            try? TestNetwork.send(payload, to: client)
            _ = client.shutdownResult(.write)
        }
        XCTAssertTrue(try TestNetwork.receiveAll(from: client) == payload)
        sender.join()
        client.close()

        XCTAssertNil(encrypt.stop())
        XCTAssertNil(decrypt.stop())
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/encrypt.sock"), "socket file removed at exit")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/decrypt.sock"))
    }

    func testStaleUnixSocketFileIsReplaced() throws {
        let directory = try TestNetwork.temporaryDirectory()
        let path = directory + "/stale.sock"
        // A socket file whose owner is gone: bound, then closed without unlinking.
        let dead = try FileDescriptor.streamSocket(family: AF_UNIX)
        try dead.bind(to: SocketAddress(unixPath: path)!)
        dead.close()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let proxy = try RunningProxy(TestProxies.configuration(.decrypt, source: .unix(path: path), target: .ipv4("127.0.0.1", port: 9)))
        XCTAssertNil(proxy.stop())

        // A live socket is not taken over.
        let first = try RunningProxy(TestProxies.configuration(.decrypt, source: .unix(path: path), target: .ipv4("127.0.0.1", port: 9)))
        defer { first.stop() }
        XCTAssertThrowsError(try Proxy(configuration: TestProxies.configuration(.decrypt, source: .unix(path: path), target: .ipv4("127.0.0.1", port: 9)))) { error in
            guard case .listenFailed(_, let cause)? = error as? ProxyError else { return XCTFail("\(error)") }
            XCTAssertEqual(cause.errno, .addressInUse)
        }
    }

    func testHalfCloseFromClientThenReply() throws {
        // The target reads to end of file, then answers with the byte count and closes.
        let target = try TestServer { fd in
            let received = (try? TestNetwork.receiveAll(from: fd)) ?? []
            try? TestNetwork.send(Array("got \(received.count)".utf8), to: fd)
            fd.close()
        }
        defer { target.stop() }
        let (decrypt, encrypt) = try chain(target: target)
        defer { encrypt.stop(); decrypt.stop() }

        let client = try TestNetwork.connect(to: encrypt.address)
        defer { client.close() }
        try TestNetwork.send(TestNetwork.randomBytes(100_000), to: client)
        try client.shutdown(.write)
        XCTAssertEqual(String(decoding: try TestNetwork.receiveAll(from: client), as: UTF8.self), "got 100000")
    }

    func testHalfCloseFromTargetWhileClientKeepsSending() throws {
        // The target sends a banner and shuts down its writing half, then counts what arrives.
        let received = LockedCounter()
        let target = try TestServer { fd in
            try? TestNetwork.send(Array("banner".utf8), to: fd)
            _ = fd.shutdownResult(.write)
            received.set((try? TestNetwork.receiveAll(from: fd))?.count ?? -1)
            fd.close()
        }
        defer { target.stop() }
        let (decrypt, encrypt) = try chain(target: target)
        defer { encrypt.stop(); decrypt.stop() }

        let client = try TestNetwork.connect(to: encrypt.address)
        defer { client.close() }
        XCTAssertEqual(String(decoding: try TestNetwork.receiveAll(from: client), as: UTF8.self), "banner")
        // Our reading half has ended; our writing half still works through both proxies.
        try TestNetwork.send(TestNetwork.randomBytes(50_000), to: client)
        try client.shutdown(.write)
        XCTAssertTrue(RunningProxy.wait(seconds: 10) { received.value == 50_000 }, "target received \(received.value)")
        XCTAssertTrue(TestNetwork.closedByPeer(client, within: 5), "pair closes once both directions ended")
    }

    func testWrongKeyIsRejectedBeforeTheTargetAndNextClientIsServed() throws {
        let log = LogRecorder()
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let decrypt = try RunningProxy(TestProxies.configuration(.decrypt, target: target.spec, log: log))
        defer { decrypt.stop() }
        let wrong = try RunningProxy(TestProxies.configuration(.encrypt, target: decrypt.spec, key: TestProxies.keyB))
        defer { wrong.stop() }
        let right = try RunningProxy(TestProxies.configuration(.encrypt, target: decrypt.spec, key: TestProxies.keyA))
        defer { right.stop() }

        let intruder = try TestNetwork.connect(to: wrong.address)
        defer { intruder.close() }
        try TestNetwork.send(Array("let me in".utf8), to: intruder)
        XCTAssertTrue(TestNetwork.closedByPeer(intruder, within: 5))
        XCTAssertEqual(target.acceptedCount, 0, "a client with the wrong key never reaches the target")
        XCTAssertTrue(RunningProxy.wait(seconds: 2) { !log.warnings(containing: "handshake").isEmpty }, "\(log.all)")

        let client = try TestNetwork.connect(to: right.address)
        defer { client.close() }
        try TestNetwork.send(Array("hello".utf8), to: client)
        XCTAssertEqual(try TestNetwork.receive(5, from: client), Array("hello".utf8))
        XCTAssertEqual(target.acceptedCount, 1)
    }

    func testConnectionLimitPausesAcceptingUntilOneCloses() throws {
        let log = LogRecorder()
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let (decrypt, encrypt) = try chain(target: target, log: log) { $0.maxConnections = 2 }
        defer { encrypt.stop(); decrypt.stop() }

        var open: [FileDescriptor] = []
        defer { open.forEach { $0.close() } }
        for index in 0..<2 {
            let client = try TestNetwork.connect(to: encrypt.address)
            open.append(client)
            try TestNetwork.send([UInt8(index)], to: client)
            XCTAssertEqual(try TestNetwork.receive(1, from: client), [UInt8(index)])
        }
        // The kernel completes the third TCP connection, but the proxy does not serve it.
        let third = try TestNetwork.connect(to: encrypt.address, receiveTimeout: 0.5)
        open.append(third)
        try TestNetwork.send([3], to: third)
        XCTAssertThrowsError(try TestNetwork.receive(1, from: third), "not served while at the limit")
        XCTAssertEqual(log.warnings(containing: "limit").count, 1, "\(log.all)")

        _ = open[0].shutdownResult(.write)
        XCTAssertTrue(TestNetwork.closedByPeer(open[0], within: 5))
        TestNetwork.setReceiveTimeout(third, seconds: 5)
        XCTAssertEqual(try TestNetwork.receive(1, from: third), [3], "served once a connection closed")
        XCTAssertEqual(target.acceptedCount, 3)
    }

    func testTargetDownClosesTheClientAndLogs() throws {
        let log = LogRecorder()
        let port = try TestNetwork.unusedPort()
        let encrypt = try RunningProxy(TestProxies.configuration(.encrypt, target: .ipv4("127.0.0.1", port: port), log: log))
        defer { encrypt.stop() }
        let client = try TestNetwork.connect(to: encrypt.address)
        defer { client.close() }
        XCTAssertTrue(TestNetwork.closedByPeer(client, within: 5))
        XCTAssertTrue(RunningProxy.wait(seconds: 2) { !log.warnings(containing: "cannot connect").isEmpty }, "\(log.all)")
        // Still serving: another attempt is handled the same way.
        let again = try TestNetwork.connect(to: encrypt.address)
        defer { again.close() }
        XCTAssertTrue(TestNetwork.closedByPeer(again, within: 5))
    }

    func testStalledHandshakeIsCutAtTheDeadline() throws {
        let log = LogRecorder()
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        var configuration = TestProxies.configuration(.decrypt, target: target.spec, log: log)
        configuration.timeoutSeconds = 0.5
        let decrypt = try RunningProxy(configuration)
        defer { decrypt.stop() }

        let slowloris = try TestNetwork.connect(to: decrypt.address)
        defer { slowloris.close() }
        try TestNetwork.send([UInt8](repeating: 1, count: 10), to: slowloris)
        let start = Date()
        XCTAssertTrue(TestNetwork.closedByPeer(slowloris, within: 5))
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(elapsed, 0.3)
        XCTAssertLessThan(elapsed, 2.5)
        XCTAssertEqual(target.acceptedCount, 0)
        XCTAssertTrue(RunningProxy.wait(seconds: 2) { !log.warnings(containing: "timed out").isEmpty }, "\(log.all)")
    }

    func testStopWaitsForOpenConnectionsThenReturns() throws {
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let (decrypt, encrypt) = try chain(target: target)
        defer { decrypt.stop() }

        let client = try TestNetwork.connect(to: encrypt.address)
        try TestNetwork.send([42], to: client)
        XCTAssertEqual(try TestNetwork.receive(1, from: client), [42])

        encrypt.proxy.requestStop()
        usleep(300_000)
        XCTAssertFalse(encrypt.hasFinished, "an open connection keeps the proxy running")
        // The open connection still works.
        try TestNetwork.send([43], to: client)
        XCTAssertEqual(try TestNetwork.receive(1, from: client), [43])
        _ = client.shutdownResult(.write)
        XCTAssertTrue(TestNetwork.closedByPeer(client, within: 5))
        client.close()
        XCTAssertTrue(RunningProxy.wait(seconds: 5) { encrypt.hasFinished })
        XCTAssertNil(encrypt.stop())
    }

    func testSigtermStopsAcceptingAndRunReturns() throws {
        let log = LogRecorder()
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let decrypt = try RunningProxy(TestProxies.configuration(.decrypt, target: target.spec, log: log))
        defer { decrypt.stop() }
        XCTAssertTrue(RunningProxy.wait(seconds: 2) { decrypt.runThreadID != nil })
        usleep(50_000)
        // Directed at the thread in run(), which blocks SIGTERM and reads it from its signalfd.
        pthread_kill(decrypt.runThreadID!, SIGTERM)
        XCTAssertTrue(RunningProxy.wait(seconds: 5) { decrypt.hasFinished }, "\(log.all)")
        XCTAssertTrue(log.all.contains { $0.contains("stopping: no new connections; draining 0 open connections") }, "\(log.all)")
    }

    func testOutgoingSocketsBindToTheGivenAddress() throws {
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        // 127.0.0.2 is loopback on Linux but differs from the default source 127.0.0.1.
        let (decrypt, encrypt) = try chain(target: target, configureDecrypt: { $0.bindAddress = .ipv4("127.0.0.2", port: 0) })
        defer { encrypt.stop(); decrypt.stop() }
        let client = try TestNetwork.connect(to: encrypt.address)
        defer { client.close() }
        try TestNetwork.send([1], to: client)
        XCTAssertEqual(try TestNetwork.receive(1, from: client), [1])
        XCTAssertEqual(target.acceptedPeers.first?.description.hasPrefix("127.0.0.2:"), true, "\(target.acceptedPeers)")
    }

    func testWaitForDNSRetriesUntilStopped() throws {
        let log = LogRecorder()
        var configuration = TestProxies.configuration(.encrypt, target: .hostName("no-such-host.invalid", port: 80), log: log)
        XCTAssertThrowsError(try Proxy(configuration: configuration), "without -D an unresolvable target is an error") { error in
            guard case .addressResolutionFailed? = error as? ProxyError else { return XCTFail("\(error)") }
        }
        configuration.waitForDNS = true
        let proxy = try RunningProxy(configuration)
        XCTAssertTrue(RunningProxy.wait(seconds: 5) { !log.warnings(containing: "retrying").isEmpty }, "\(log.all)")
        XCTAssertFalse(proxy.hasFinished)
        XCTAssertNil(proxy.stop())
    }

    /// Runs a client handshake by hand over a blocking socket; returns the session.
    private func handshake(over socket: FileDescriptor, key: SpipedKey) throws -> (sealer: PacketSealer, opener: PacketOpener) {
        let client = try Handshake(role: .client, key: key, options: HandshakeOptions(fast: true), backend: TestProxies.backend)
        var buffer = [UInt8](repeating: 0, count: 512)
        while !client.isComplete {
            while !client.pendingOutput.isEmpty {
                client.consumeOutput(try socket.write(client.pendingOutput))
            }
            let count = try buffer.withUnsafeMutableBytes { try socket.read(into: $0) }
            if count == 0 { throw TestNetwork.Failure(description: "closed during handshake") }
            _ = try buffer.withUnsafeBytes { try client.receive(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        while !client.pendingOutput.isEmpty { client.consumeOutput(try socket.write(client.pendingOutput)) }
        return client.makeSession()!
    }

    func testForgedPacketClosesThePairAndIsLogged() throws {
        let log = LogRecorder()
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let decrypt = try RunningProxy(TestProxies.configuration(.decrypt, target: target.spec, log: log))
        defer { decrypt.stop() }

        let socket = try TestNetwork.connect(to: decrypt.address)
        defer { socket.close() }
        let session = try handshake(over: socket, key: TestProxies.keyA)
        // One genuine packet goes through and is echoed back...
        var packet = [UInt8](repeating: 0, count: PacketSealer.packetByteCount)
        let sealed = try Array("genuine".utf8).withUnsafeBytes { plain in
            try packet.withUnsafeMutableBytes { try session.sealer.seal(plain, into: $0) }
        }
        XCTAssertEqual(sealed.produced, PacketSealer.packetByteCount)
        try TestNetwork.send(packet, to: socket)
        let reply = try TestNetwork.receive(PacketSealer.packetByteCount, from: socket)
        var plain = [UInt8](repeating: 0, count: 2048)
        let opened = try reply.withUnsafeBytes { cipher in try plain.withUnsafeMutableBytes { try session.opener.open(cipher, into: $0) } }
        XCTAssertEqual(Array(plain[0..<opened.produced]), Array("genuine".utf8))
        // ...then a packet with one flipped bit closes the pair.
        let forged = try Array("forged".utf8).withUnsafeBytes { plain in
            try packet.withUnsafeMutableBytes { try session.sealer.seal(plain, into: $0) }
        }
        XCTAssertEqual(forged.produced, PacketSealer.packetByteCount)
        packet[10] ^= 1
        try TestNetwork.send(packet, to: socket)
        XCTAssertTrue(TestNetwork.closedByPeer(socket, within: 5))
        XCTAssertTrue(RunningProxy.wait(seconds: 2) { !log.warnings(containing: "authentication failed").isEmpty }, "\(log.all)")
        XCTAssertTrue(log.warnings(containing: "authentication failed").first?.contains("127.0.0.1:") ?? false, "names the peer")
    }

    func testTruncatedPacketAtEndOfStreamIsAnError() throws {
        let log = LogRecorder()
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let decrypt = try RunningProxy(TestProxies.configuration(.decrypt, target: target.spec, log: log))
        defer { decrypt.stop() }
        let socket = try TestNetwork.connect(to: decrypt.address)
        defer { socket.close() }
        _ = try handshake(over: socket, key: TestProxies.keyA)
        try TestNetwork.send([UInt8](repeating: 0, count: 500), to: socket)
        try socket.shutdown(.write)
        XCTAssertTrue(TestNetwork.closedByPeer(socket, within: 5))
        XCTAssertTrue(RunningProxy.wait(seconds: 2) { !log.warnings(containing: "cut in the middle of a packet").isEmpty }, "\(log.all)")
    }

    func testSpipeClientRoundTripThroughDecryptProxy() throws {
        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let decrypt = try RunningProxy(TestProxies.configuration(.decrypt, target: target.spec, fast: false))
        defer { decrypt.stop() }

        let (input, inputFeed) = try FileDescriptor.socketPair(nonBlocking: false)
        let (output, outputTap) = try FileDescriptor.socketPair(nonBlocking: false)
        defer { [input, inputFeed, output, outputTap].forEach { $0.close() } }
        let payload = TestNetwork.randomBytes(200_000)
        let feeder = try SystemThread(name: "test-feed") {
            try? TestNetwork.send(payload, to: inputFeed)
            _ = inputFeed.shutdownResult(.write)
        }
        let outcome = LockedCounter()
        let client = try SystemThread(name: "test-spipe") {
            do throws(ProxyError) {
                try SpipeClient.run(target: decrypt.spec, key: TestProxies.keyA, handshake: HandshakeOptions(),
                                    backend: TestProxies.backend, keepAlive: true, timeoutSeconds: 5,
                                    bindAddress: nil, input: input, output: output)
                outcome.set(1)
            } catch {
                outcome.set(-1)
            }
            _ = output.shutdownResult(.write)
        }
        TestNetwork.setReceiveTimeout(outputTap, seconds: 10)
        let echoed = try TestNetwork.receiveAll(from: outputTap)
        feeder.join()
        client.join()
        XCTAssertTrue(echoed == payload, "got \(echoed.count) bytes")
        XCTAssertEqual(outcome.value, 1)
    }

    func testSpipeClientThrowsWhenTargetIsDownOrKeyIsWrong() throws {
        let port = try TestNetwork.unusedPort()
        XCTAssertThrowsError(try SpipeClient.run(target: .ipv4("127.0.0.1", port: port), key: TestProxies.keyA,
                                                 handshake: HandshakeOptions(), backend: TestProxies.backend, keepAlive: true,
                                                 timeoutSeconds: 2, bindAddress: nil,
                                                 input: .standardInput, output: .standardOutput)) { error in
            guard case .connectFailed? = error as? ProxyError else { return XCTFail("\(error)") }
        }

        let target = try TestServer(handler: TestServer.echo)
        defer { target.stop() }
        let decrypt = try RunningProxy(TestProxies.configuration(.decrypt, target: target.spec))
        defer { decrypt.stop() }
        let (input, inputFeed) = try FileDescriptor.socketPair(nonBlocking: false)
        let (output, outputTap) = try FileDescriptor.socketPair(nonBlocking: false)
        defer { [input, inputFeed, output, outputTap].forEach { $0.close() } }
        XCTAssertThrowsError(try SpipeClient.run(target: decrypt.spec, key: TestProxies.keyB, handshake: HandshakeOptions(fast: true),
                                                 backend: TestProxies.backend, keepAlive: true, timeoutSeconds: 5,
                                                 bindAddress: nil, input: input, output: output))
        XCTAssertEqual(target.acceptedCount, 0)
    }
}

/// An integer shared between threads.
final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0
    var value: Int { lock.withLock { stored } }
    func set(_ value: Int) { lock.withLock { stored = value } }
    func add(_ amount: Int) { lock.withLock { stored += amount } }
}
