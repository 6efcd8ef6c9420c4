import Foundation
import Glibc
import SpipedCrypto
@testable import SpipedProtocol
import XCTest

/// The sans-I/O core against Debian's spiped 1.6.x over real loopback sockets (skipped when
/// `spiped` is not installed): our client through `spiped -d`, our server behind `spiped -e`,
/// with `-f` on either side and `-g` refusing a `-f` peer. Blocking sockets, one thread: each
/// step's data fits in the kernel's socket buffers.
final class ReferenceInteropTests: XCTestCase {
    private static let spipedPath = "/usr/bin/spiped"
    private var directory: URL!
    private var keyPath: String!
    private var keyFileContents: [UInt8] = []
    private var processes: [Process] = []

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.spipedPath) else {
            throw XCTSkip("spiped is not installed (apt-get install spiped)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("spiped-interop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        keyFileContents = try SystemRandom.bytes(32)
        keyPath = directory.appendingPathComponent("key").path
        XCTAssertTrue(FileManager.default.createFile(atPath: keyPath, contents: Data(keyFileContents),
                                                     attributes: [.posixPermissions: 0o600]))
    }

    override func tearDown() {
        for process in processes where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    // MARK: - Cases

    func testOurClientThroughSpipedDecrypt() throws {
        for (ourFast, theirFlags) in [(false, [String]()), (true, []), (false, ["-f"]), (true, ["-f"]), (false, ["-g"])] {
            try runClient(fast: ourFast, spipedFlags: theirFlags, expectRefusal: false)
        }
    }

    func testSpipedDecryptWithForwardSecrecyRefusesOurFastClient() throws {
        try runClient(fast: true, spipedFlags: ["-g"], expectRefusal: true)
    }

    func testOurServerBehindSpipedEncrypt() throws {
        for (ourFast, theirFlags) in [(false, [String]()), (true, []), (false, ["-f"]), (true, ["-f"]), (false, ["-g"])] {
            try runServer(options: HandshakeOptions(fast: ourFast), spipedFlags: theirFlags, expectFailure: nil)
        }
    }

    func testOurForwardSecrecyServerRefusesFastSpipedEncrypt() throws {
        try runServer(options: HandshakeOptions(requireForwardSecrecy: true), spipedFlags: ["-f"],
                      expectFailure: .forwardSecrecyRequired)
    }

    // MARK: - Scenarios

    /// Our client → spiped -d → a target socket we hold. Sends 5000 bytes, reads them at the
    /// target, answers 3000 bytes, reads them back decrypted.
    private func runClient(fast: Bool, spipedFlags: [String], expectRefusal: Bool) throws {
        let context = "our client fast=\(fast), spiped -d \(spipedFlags)"
        let target = try Socket.listen()
        let source = try freePort()
        try startSpiped(["-d", "-s", "[127.0.0.1]:\(source)", "-t", "[127.0.0.1]:\(target.port)"] + spipedFlags)
        let connection = try Socket.connect(port: source)
        let targetSide = try target.accept()   // spiped -d connects to its target at once.

        let handshake = try Handshake(role: .client, key: SpipedKey(fileContents: keyFileContents),
                                      options: HandshakeOptions(fast: fast))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !handshake.isComplete {
            try connection.send([UInt8](handshake.pendingOutput))
            handshake.consumeOutput(handshake.pendingOutput.count)
            let count = try connection.receive(into: &buffer)
            if count == 0 {
                XCTAssertTrue(expectRefusal, "spiped -d closed during the handshake: \(context)")
                assertThrows(.truncated) { () throws(SpipedProtocolError) in try handshake.receiveEndOfStream() }
                return
            }
            let consumed = try buffer[0..<count].withUnsafeBytes { bytes in
                Result { () throws(SpipedProtocolError) in try handshake.receive(bytes) }
            }.get()
            XCTAssertEqual(consumed, count, "spiped sent nothing beyond the handshake yet: \(context)")
        }
        XCTAssertFalse(expectRefusal, "handshake completed although spiped should refuse: \(context)")
        try connection.send([UInt8](handshake.pendingOutput))
        handshake.consumeOutput(handshake.pendingOutput.count)
        let session = try XCTUnwrap(handshake.makeSession())

        let upstream = try SystemRandom.bytes(5000)
        try connection.send(sealAll(session.sealer, upstream))
        XCTAssertEqual(try targetSide.receive(exactly: upstream.count), upstream, context)
        let downstream = try SystemRandom.bytes(3000)
        try targetSide.send(downstream)
        let packets = try connection.receive(exactly: 3 * PacketSealer.packetByteCount)
        XCTAssertEqual(try openAll(session.opener, packets, chunking: .random(seed: 5, maximum: 900)), downstream, context)
    }

    /// A plain client → spiped -e → our server. Sends 5000 bytes in, reads them decrypted,
    /// answers 2100 bytes, reads them at the plain client.
    private func runServer(options: HandshakeOptions, spipedFlags: [String], expectFailure: SpipedProtocolError?) throws {
        let context = "our server \(options), spiped -e \(spipedFlags)"
        let listener = try Socket.listen()
        let source = try freePort()
        try startSpiped(["-e", "-s", "[127.0.0.1]:\(source)", "-t", "[127.0.0.1]:\(listener.port)"] + spipedFlags)
        let plain = try Socket.connect(port: source)
        let encrypted = try listener.accept()   // spiped -e connects to its target on accept.

        let handshake = try Handshake(role: .server, key: SpipedKey(fileContents: keyFileContents), options: options)
        var buffer = [UInt8](repeating: 0, count: 4096)
        var leftover: [UInt8] = []
        do {
            while !handshake.isComplete {
                try encrypted.send([UInt8](handshake.pendingOutput))
                handshake.consumeOutput(handshake.pendingOutput.count)
                let count = try encrypted.receive(into: &buffer)
                if count == 0 { try handshake.receiveEndOfStream() }
                let consumed = try buffer[0..<count].withUnsafeBytes { bytes in
                    Result { () throws(SpipedProtocolError) in try handshake.receive(bytes) }
                }.get()
                leftover = Array(buffer[consumed..<count])
            }
        } catch let error as SpipedProtocolError {
            XCTAssertEqual(error, expectFailure, context)
            XCTAssertTrue(handshake.pendingOutput.isEmpty, context)
            return
        }
        XCTAssertNil(expectFailure, "handshake completed although it should fail: \(context)")
        try encrypted.send([UInt8](handshake.pendingOutput))
        handshake.consumeOutput(handshake.pendingOutput.count)
        let session = try XCTUnwrap(handshake.makeSession())

        let upstream = try SystemRandom.bytes(5000)
        try plain.send(upstream)
        let packets = leftover + (try encrypted.receive(exactly: 5 * PacketSealer.packetByteCount - leftover.count))
        XCTAssertEqual(try openAll(session.opener, packets, chunking: .bytewise), upstream, context)
        let downstream = try SystemRandom.bytes(2100)
        try encrypted.send(sealAll(session.sealer, downstream))
        XCTAssertEqual(try plain.receive(exactly: downstream.count), downstream, context)
    }

    // MARK: - Processes and sockets

    private func startSpiped(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.spipedPath)
        process.arguments = arguments + ["-F", "-k", keyPath, "-p", directory.appendingPathComponent("pid-\(processes.count)").path]
        try process.run()
        processes.append(process)
    }

    private func freePort() throws -> UInt16 {
        let socket = try Socket.listen()
        return socket.port
    }

    /// A blocking IPv4 loopback TCP socket with 5-second timeouts, closed on release.
    private final class Socket {
        let descriptor: Int32
        let port: UInt16

        private init(descriptor: Int32, port: UInt16) {
            self.descriptor = descriptor
            self.port = port
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(descriptor) }

        private static func address(port: UInt16) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            return address
        }

        static func listen() throws -> Socket {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = address(port: 0)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, Glibc.listen(descriptor, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            return Socket(descriptor: descriptor, port: UInt16(bigEndian: address.sin_port))
        }

        /// Connects, retrying for up to 5 s while the peer process starts listening.
        static func connect(port: UInt16) throws -> Socket {
            for _ in 0..<100 {
                let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = address(port: port)
                let result = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                if result == 0 { return Socket(descriptor: descriptor, port: port) }
                close(descriptor)
                usleep(50_000)
            }
            throw POSIXError(.ECONNREFUSED)
        }

        func accept() throws -> Socket {
            let descriptor = Glibc.accept(self.descriptor, nil, nil)
            guard descriptor >= 0 else { throw POSIXError(.ETIMEDOUT) }
            return Socket(descriptor: descriptor, port: port)
        }

        func send(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                offset += sent
            }
        }

        /// One recv; 0 at end of stream (or a reset, which is how spiped refuses too).
        func receive(into buffer: inout [UInt8]) throws -> Int {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == ECONNRESET { return 0 }
            guard count >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            return count
        }

        func receive(exactly count: Int) throws -> [UInt8] {
            var result: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while result.count < count {
                let received = try receive(into: &buffer)
                guard received > 0 else { throw POSIXError(.ECONNRESET) }
                result += buffer[0..<received]
            }
            return result
        }
    }
}
