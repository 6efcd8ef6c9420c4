import Foundation
import Glibc
import SpipedSystem
import XCTest

/// The typed Glibc wrappers, against the real kernel.
final class SystemWrapperTests: XCTestCase {
    func testUnixSocketBindRefusesAFileThatIsNotASocket() throws {
        let directory = try TestNetwork.temporaryDirectory()
        let path = directory + "/in-the-way"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        let fd = try FileDescriptor.streamSocket(family: AF_UNIX)
        defer { fd.close() }
        XCTAssertThrowsError(try UnixSocketFile.bind(fd, to: SocketAddress(unixPath: path)!)) { error in
            XCTAssertEqual(error as? UnixSocketBindError, .notASocket(path: path, kind: .regularFile))
            XCTAssertEqual("\(error)", "\(path): a regular file is in the way; refusing to replace it")
        }
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep".utf8))
    }

    func testUnixSocketFileIsRemovedOnlyWhileItIsOurs() throws {
        let directory = try TestNetwork.temporaryDirectory()
        let path = directory + "/ours.sock"
        let address = SocketAddress(unixPath: path)!
        let first = try FileDescriptor.streamSocket(family: AF_UNIX)
        defer { first.close() }
        let firstFile = try UnixSocketFile.bind(first, to: address)
        // Not listening, so stale to a newcomer: it replaces the file with its own.
        let second = try FileDescriptor.streamSocket(family: AF_UNIX)
        defer { second.close() }
        let secondFile = try UnixSocketFile.bind(second, to: address)
        XCTAssertNotEqual(firstFile.identity, secondFile.identity)
        XCTAssertFalse(firstFile.removeIfStillOurs(), "the path now names the newcomer's socket")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        XCTAssertTrue(secondFile.removeIfStillOurs())
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testSocketPairRoundTripAndEndOfFile() throws {
        let (left, right) = try FileDescriptor.socketPair()
        defer { left.close(); right.close() }
        let message: [UInt8] = Array("hello, spiped".utf8)
        XCTAssertEqual(try message.withUnsafeBytes { try left.write($0) }, message.count)
        var received = [UInt8](repeating: 0, count: 64)
        let count = try received.withUnsafeMutableBytes { try right.read(into: $0) }
        XCTAssertEqual(Array(received[0..<count]), message)
        try left.shutdown(.write)
        XCTAssertEqual(try received.withUnsafeMutableBytes { try right.read(into: $0) }, 0, "FIN reads as end of file")
    }

    func testEmptyNonBlockingReadIsWouldBlock() throws {
        let (left, right) = try FileDescriptor.socketPair()
        defer { left.close(); right.close() }
        var buffer = [UInt8](repeating: 0, count: 16)
        let result = buffer.withUnsafeMutableBytes { right.readResult(into: $0) }
        guard case .failure(let errno) = result else { return XCTFail("expected EAGAIN, got \(result)") }
        XCTAssertEqual(errno, .wouldBlock)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try right.read(into: $0) }) { error in
            XCTAssertEqual((error as? SystemError)?.errno, .wouldBlock)
            XCTAssertEqual((error as? SystemError)?.operation, "read")
        }
    }

    func testFullSocketWriteIsShortThenWouldBlock() throws {
        let (left, right) = try FileDescriptor.socketPair()
        defer { left.close(); right.close() }
        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        var total = 0
        var sawWouldBlock = false
        for _ in 0..<64 {
            let result = chunk.withUnsafeBytes { left.writeResult($0) }
            switch result {
            case .success(let count): total += count
            case .failure(let errno):
                XCTAssertEqual(errno, .wouldBlock)
                sawWouldBlock = true
            }
            if sawWouldBlock { break }
        }
        XCTAssertTrue(sawWouldBlock)
        XCTAssertGreaterThan(total, 0)
    }

    func testVectoredReadAndWrite() throws {
        let (left, right) = try FileDescriptor.socketPair()
        defer { left.close(); right.close() }
        let first: [UInt8] = [1, 2, 3], second: [UInt8] = [4, 5, 6, 7]
        let written = try first.withUnsafeBytes { a in try second.withUnsafeBytes { b in try left.writev([a, b]) } }
        XCTAssertEqual(written, 7)
        var head = [UInt8](repeating: 0, count: 2), tail = [UInt8](repeating: 0, count: 5)
        let read = try head.withUnsafeMutableBytes { a in try tail.withUnsafeMutableBytes { b in try right.readv([a, b]) } }
        XCTAssertEqual(read, 7)
        XCTAssertEqual(head, [1, 2])
        XCTAssertEqual(tail, [3, 4, 5, 6, 7])
    }

    func testEdgeTriggeredEpollReportsNewDataOnce() throws {
        let epoll = try Epoll()
        let (left, right) = try FileDescriptor.socketPair()
        defer { left.close(); right.close() }
        try epoll.add(right, events: [.readable, .edgeTriggered], token: 42)
        var events: [EpollEvent] = []
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 0) { events.append($0) }, 0, "nothing to read yet")
        _ = try [UInt8]([9]).withUnsafeBytes { try left.write($0) }
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 1000) { events.append($0) }, 1)
        XCTAssertEqual(events.first?.token, 42)
        XCTAssertTrue(events.first?.events.contains(.readable) ?? false)
        // Edge-triggered: the unread byte does not produce a second report.
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 0) { _ in }, 0)
        // New data is a new edge.
        _ = try [UInt8]([10]).withUnsafeBytes { try left.write($0) }
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 1000) { _ in }, 1)
        try epoll.remove(right)
        _ = try [UInt8]([11]).withUnsafeBytes { try left.write($0) }
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 0) { _ in }, 0, "removed")
    }

    func testEpollReportsPeerShutdown() throws {
        let epoll = try Epoll()
        let (left, right) = try FileDescriptor.socketPair()
        defer { left.close(); right.close() }
        try epoll.add(right, events: [.readable, .peerClosedWriting, .edgeTriggered], token: 1)
        try left.shutdown(.write)
        var seen: EpollEvents = []
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 1000) { seen = $0.events }, 1)
        XCTAssertTrue(seen.contains(.peerClosedWriting))
    }

    func testEventNotifierWakesEpoll() throws {
        let epoll = try Epoll()
        let notifier = try EventNotifier()
        try epoll.add(notifier.descriptor, events: .readable, token: 5)
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 0) { _ in }, 0)
        let thread = try SystemThread(name: "notifier-test") { notifier.signal() }
        thread.join()
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 1000) { _ in }, 1)
        XCTAssertEqual(notifier.waitAndReset(), 1)
        XCTAssertEqual(notifier.waitAndReset(), 0)
    }

    func testResolvesLocalhostLoopbackLiteralsAndUnixPaths() throws {
        let v4 = try AddressResolver.resolve(.ipv4("127.0.0.1", port: 8080))
        XCTAssertEqual(v4.map(\.description), ["127.0.0.1:8080"])
        XCTAssertEqual(v4.first?.family, AF_INET)
        let v6 = try AddressResolver.resolve(.ipv6("::1", port: 443))
        XCTAssertEqual(v6.map(\.description), ["[::1]:443"])
        XCTAssertEqual(v6.first?.port, 443)
        let local = try AddressResolver.resolve(.hostName("localhost", port: 22))
        XCTAssertFalse(local.isEmpty)
        for address in local {
            XCTAssertTrue(address.description == "127.0.0.1:22" || address.description == "[::1]:22", address.description)
        }
        let unix = try AddressResolver.resolve(.unix(path: "/tmp/spiped-test.sock"))
        XCTAssertEqual(unix.first?.unixPath, "/tmp/spiped-test.sock")
        XCTAssertEqual(unix.first?.family, AF_UNIX)
    }

    func testResolutionFailureIsTyped() {
        XCTAssertThrowsError(try AddressResolver.resolve(.ipv4("not-an-address", port: 1))) { error in
            XCTAssertTrue(error is AddressResolutionError)
        }
        XCTAssertThrowsError(try AddressResolver.resolve(.hostName("no-such-host.invalid", port: 1)))
        XCTAssertThrowsError(try AddressResolver.resolve(.unix(path: String(repeating: "x", count: 200))))
    }

    func testNonBlockingConnectAcceptAndSocketError() throws {
        let listener = try FileDescriptor.streamSocket(family: AF_INET)
        defer { listener.close() }
        try listener.setReuseAddress()
        try listener.bind(to: AddressResolver.resolve(.ipv4("127.0.0.1", port: 0))[0])
        try listener.listen()
        let address = try listener.localAddress()
        XCTAssertNotEqual(address.port, 0)

        let client = try FileDescriptor.streamSocket(family: AF_INET)
        defer { client.close() }
        try client.setNoDelay()
        try client.setKeepAlive()
        _ = try client.connect(to: address)
        let epoll = try Epoll()
        try epoll.add(client, events: [.writable, .edgeTriggered], token: 1)
        XCTAssertEqual(try epoll.wait(timeoutMilliseconds: 2000) { _ in }, 1)
        XCTAssertNil(client.pendingSocketError())
        let (accepted, peer) = try listener.accept()
        accepted.close()
        XCTAssertEqual(peer?.family, AF_INET)

        // Nothing listens on the port once the listener is closed: the connect fails.
        let closedPort = try { () throws -> SocketAddress in
            let probe = try FileDescriptor.streamSocket(family: AF_INET)
            defer { probe.close() }
            try probe.bind(to: AddressResolver.resolve(.ipv4("127.0.0.1", port: 0))[0])
            return try probe.localAddress()
        }()
        let refused = try FileDescriptor.streamSocket(family: AF_INET)
        defer { refused.close() }
        switch refused.connectResult(to: closedPort) {
        case .failure(let errno):
            XCTAssertEqual(errno, .connectionRefused)
        case .success:
            try epoll.add(refused, events: [.writable, .edgeTriggered], token: 2)
            _ = try epoll.wait(timeoutMilliseconds: 2000) { _ in }
            XCTAssertEqual(refused.pendingSocketError(), .connectionRefused)
        }
    }

    func testErrnoNamesAndLimits() {
        XCTAssertEqual(Errno.wouldBlock.rawValue, EAGAIN)
        XCTAssertEqual(Errno.brokenPipe.rawValue, EPIPE)
        XCTAssertTrue(Errno.connectionReset.isConnectionClosure)
        XCTAssertFalse(Errno.tooManyOpenFiles.isConnectionClosure)
        XCTAssertEqual(SystemError("connect", .connectionRefused).description, "connect: Connection refused")
        XCTAssertGreaterThanOrEqual(SystemLimits.onlineProcessorCount, 1)
        XCTAssertGreaterThanOrEqual(SystemLimits.usableProcessorCount, 1)
        XCTAssertLessThanOrEqual(SystemLimits.usableProcessorCount, SystemLimits.onlineProcessorCount)
        if let limit = SystemLimits.openFileLimit { XCTAssertGreaterThan(limit, 3) }
        let start = MonotonicClock.nanoseconds
        XCTAssertGreaterThanOrEqual(MonotonicClock.nanoseconds, start)
    }

    func testSignalReaderSeesBlockedSignal() throws {
        TerminationSignals.blockInCallingThread()
        defer { TerminationSignals.unblockInCallingThread() }
        let reader = try TerminationSignals.makeReader()
        XCTAssertNil(reader.next())
        // Directed at this thread so no other thread can take it.
        pthread_kill(pthread_self(), SIGINT)
        XCTAssertEqual(reader.next(), SIGINT)
    }
}
