import Foundation
import Glibc
import SpipedProtocol
import SpipedProxy
import SpipedSystem
import XCTest

/// The proxy under resource exhaustion.
final class ProxyResourceTests: XCTestCase {
    /// With no file descriptors left, `accept` fails with EMFILE: the proxy must log once,
    /// back off, and serve the waiting connections once descriptors are available again.
    func testOutOfFileDescriptorsBacksOffAndRecovers() throws {
        let log = LogRecorder()
        var configuration = TestProxies.configuration(.decrypt, target: .ipv4("127.0.0.1", port: 9), log: log)
        configuration.eventLoopCount = 1
        let proxy = try RunningProxy(configuration)
        defer { proxy.stop() }
        usleep(100_000)

        // Client sockets are made first: while the limit is low, the test cannot make any.
        let clients = try (0..<6).map { _ in try FileDescriptor.streamSocket(family: AF_INET) }
        defer { clients.forEach { $0.close() } }
        for client in clients { try client.setNonBlocking(false) }

        var original = rlimit()
        XCTAssertEqual(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &original), 0)
        let openCount = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        var lowered = original
        lowered.rlim_cur = rlim_t(openCount + 2)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered), 0)
        for client in clients { _ = try client.connect(to: proxy.address) }
        let warned = RunningProxy.wait(seconds: 3) { !log.warnings(containing: "accept").isEmpty }
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &original), 0)
        XCTAssertTrue(warned, "\(log.all)")
        XCTAssertEqual(log.warnings(containing: "accept").count, 1, "logged once per episode")

        // Every client is served: once it sent its nonce, the server's nonce (32 bytes) arrives
        // (a server says nothing to a client that has sent nothing).
        for client in clients {
            TestNetwork.setReceiveTimeout(client, seconds: 5)
            try TestNetwork.send([UInt8](repeating: 7, count: 32), to: client)
            XCTAssertEqual(try TestNetwork.receive(32, from: client).count, 32)
        }
    }
}
