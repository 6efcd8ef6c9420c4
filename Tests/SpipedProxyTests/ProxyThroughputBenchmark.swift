import Foundation
import Glibc
import SpipedCrypto
import SpipedCryptoAccelerated
import SpipedProtocol
import SpipedProxy
import SpipedSystem
import XCTest

/// Throughput and connection-rate measurements; skipped unless `SPIPED_BENCH=1`.
/// Run in release: `SPIPED_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter ProxyThroughputBenchmark`.
/// With `SPIPED_BENCH_REFERENCE=1` the same measurements run through Debian's spiped too.
final class ProxyThroughputBenchmark: XCTestCase {
    private var megabytes: Int { Int(ProcessInfo.processInfo.environment["SPIPED_BENCH_MB"] ?? "") ?? 256 }

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["SPIPED_BENCH"] == "1", "set SPIPED_BENCH=1 to measure")
    }

    private func measureOneWay(through entry: SocketAddress, sinkTotal: LockedCounter, label: String) throws {
        let chunk = TestNetwork.randomBytes(1 << 20)
        let client = try TestNetwork.connect(to: entry, receiveTimeout: 60)
        defer { client.close() }
        let start = Date()
        for _ in 0..<megabytes { try TestNetwork.send(chunk, to: client) }
        try client.shutdown(.write)
        _ = try TestNetwork.receiveAll(from: client)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(sinkTotal.value, megabytes << 20)
        print(String(format: "BENCH %@: %d MB one way in %.2f s = %.1f MB/s", label, megabytes, seconds, Double(megabytes) / seconds))
    }

    private func measureConnections(through entry: SocketAddress, label: String, clients: Int = 4, perClient: Int = 200) throws {
        let start = Date()
        let failures = LockedCounter()
        let threads = try (0..<clients).map { _ in
            try SystemThread(name: "bench-client") {
                for _ in 0..<perClient {
                    do {
                        let client = try TestNetwork.connect(to: entry, receiveTimeout: 10)
                        try TestNetwork.send([1], to: client)
                        try client.shutdown(.write)
                        _ = try TestNetwork.receiveAll(from: client)
                        client.close()
                    } catch {
                        failures.set(failures.value + 1)
                    }
                }
            }
        }
        threads.forEach { $0.join() }
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(failures.value, 0)
        print(String(format: "BENCH %@: %d connections (%d parallel) in %.2f s = %.0f connections/s",
                     label, clients * perClient, clients, seconds, Double(clients * perClient) / seconds))
    }

    /// A target that discards everything and records the byte count at end of stream.
    private func makeSink() throws -> (TestServer, LockedCounter) {
        let total = LockedCounter()
        let server = try TestServer { fd in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var count = 0
            while true {
                let got = (try? buffer.withUnsafeMutableBytes { try fd.read(into: $0) }) ?? 0
                if got == 0 { break }
                count += got
            }
            total.set(count)
            fd.close()
        }
        return (server, total)
    }

    func testSwiftProxyPair() throws {
        let (sink, total) = try makeSink()
        defer { sink.stop() }
        let backend = CryptoBackendSelection.best
        let key = SpipedKey(fileContents: Array(repeating: 7, count: 32), backend: backend)
        func configuration(_ mode: ProxyConfiguration.Mode, target: AddressSpec) -> ProxyConfiguration {
            var configuration = ProxyConfiguration(mode: mode, source: .ipv4("127.0.0.1", port: 0), target: target,
                                                   key: key, handshake: HandshakeOptions(), backend: backend)
            configuration.maxConnections = 0
            return configuration
        }
        let decrypt = try RunningProxy(configuration(.decrypt, target: sink.spec))
        defer { decrypt.stop() }
        let encrypt = try RunningProxy(configuration(.encrypt, target: decrypt.spec))
        defer { encrypt.stop() }
        print("BENCH backend: \(backend.kind)")
        try measureOneWay(through: encrypt.address, sinkTotal: total, label: "swift -e -> swift -d")

        let echo = try TestServer(handler: TestServer.echo)
        defer { echo.stop() }
        let decryptEcho = try RunningProxy(configuration(.decrypt, target: echo.spec))
        defer { decryptEcho.stop() }
        let encryptEcho = try RunningProxy(configuration(.encrypt, target: decryptEcho.spec))
        defer { encryptEcho.stop() }
        try measureConnections(through: encryptEcho.address, label: "swift -e -> swift -d")
    }

    /// Resident memory growth per idle proxied connection: N clients through an encrypt and a
    /// decrypt proxy (same process) to a target that never accepts (the kernel backlog holds
    /// the connections), so neither test clients nor the target allocate per connection.
    func testIdleConnectionMemory() throws {
        let count = 1000
        let target = try FileDescriptor.streamSocket(family: AF_INET)
        try target.bind(to: AddressResolver.resolve(.ipv4("127.0.0.1", port: 0))[0])
        try target.listen(backlog: 4096)
        let targetPort = try target.localAddress().port!
        let backend = CryptoBackendSelection.best
        let key = SpipedKey(fileContents: Array(repeating: 7, count: 32), backend: backend)
        func configuration(_ mode: ProxyConfiguration.Mode, target: AddressSpec) -> ProxyConfiguration {
            var configuration = ProxyConfiguration(mode: mode, source: .ipv4("127.0.0.1", port: 0), target: target,
                                                   key: key, handshake: HandshakeOptions(fast: true), backend: backend)
            configuration.maxConnections = 0
            configuration.log = { _, _ in }
            return configuration
        }
        let decrypt = try RunningProxy(configuration(.decrypt, target: .ipv4("127.0.0.1", port: targetPort)))
        defer { decrypt.stop() }
        let encrypt = try RunningProxy(configuration(.encrypt, target: decrypt.spec))
        defer { encrypt.stop() }
        // Warm up both proxies (buffers, first allocations) with a few connections.
        var clients = try (0..<16).map { _ in try TestNetwork.connect(to: encrypt.address) }
        XCTAssertTrue(RunningProxy.wait(seconds: 10) { decrypt.proxy.openConnectionCount == 16 })
        usleep(500_000)
        let before = Self.residentBytes()
        for _ in 0..<count { clients.append(try TestNetwork.connect(to: encrypt.address)) }
        XCTAssertTrue(RunningProxy.wait(seconds: 30) { decrypt.proxy.openConnectionCount == count + 16 })
        usleep(1_000_000)
        let after = Self.residentBytes()
        let perPair = Double(after - before) / Double(count)
        print(String(format: "BENCH idle memory: %d connections, RSS +%.1f MB = %.0f bytes per connection through both proxies (%.0f per proxy connection)",
                     count, Double(after - before) / 1e6, perPair, perPair / 2))
        clients.forEach { $0.close() }
        // Closing the listener resets the never-accepted connections, so the proxies can stop.
        target.close()
    }

    private static func residentBytes() -> Int {
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = Int(statm.split(separator: " ")[1]) ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testReferenceSpipedPair() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["SPIPED_BENCH_REFERENCE"] == "1")
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/usr/bin/spiped"))
        let directory = try TestNetwork.temporaryDirectory()
        let keyPath = directory + "/key"
        XCTAssertTrue(FileManager.default.createFile(atPath: keyPath, contents: Data(repeating: 7, count: 32)))
        let (sink, total) = try makeSink()
        defer { sink.stop() }
        let decryptPort = try TestNetwork.unusedPort(), encryptPort = try TestNetwork.unusedPort()
        let processes = [
            try launch(["-d", "-s", "[127.0.0.1]:\(decryptPort)", "-t", "[127.0.0.1]:\(sink.address.port!)", "-k", keyPath, "-F", "-n", "0", "-p", directory + "/d.pid"]),
            try launch(["-e", "-s", "[127.0.0.1]:\(encryptPort)", "-t", "[127.0.0.1]:\(decryptPort)", "-k", keyPath, "-F", "-n", "0", "-p", directory + "/e.pid"]),
        ]
        defer { processes.forEach { $0.terminate(); $0.waitUntilExit() } }
        usleep(300_000)
        let entry = try AddressResolver.resolve(.ipv4("127.0.0.1", port: encryptPort))[0]
        try measureOneWay(through: entry, sinkTotal: total, label: "C spiped -e -> C spiped -d")

        let echo = try TestServer(handler: TestServer.echo)
        defer { echo.stop() }
        let echoDecryptPort = try TestNetwork.unusedPort(), echoEncryptPort = try TestNetwork.unusedPort()
        let echoProcesses = [
            try launch(["-d", "-s", "[127.0.0.1]:\(echoDecryptPort)", "-t", "[127.0.0.1]:\(echo.address.port!)", "-k", keyPath, "-F", "-n", "0", "-p", directory + "/ed.pid"]),
            try launch(["-e", "-s", "[127.0.0.1]:\(echoEncryptPort)", "-t", "[127.0.0.1]:\(echoDecryptPort)", "-k", keyPath, "-F", "-n", "0", "-p", directory + "/ee.pid"]),
        ]
        defer { echoProcesses.forEach { $0.terminate(); $0.waitUntilExit() } }
        usleep(300_000)
        try measureConnections(through: try AddressResolver.resolve(.ipv4("127.0.0.1", port: echoEncryptPort))[0],
                               label: "C spiped -e -> C spiped -d")
    }

    /// Mixed pairs: Debian's spiped -e in front of our -d, and our -e in front of Debian's -d
    /// (throughput, and proof that each direction of the handshake and packets interoperates).
    func testMixedPairsWithReferenceSpiped() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["SPIPED_BENCH_REFERENCE"] == "1")
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/usr/bin/spiped"))
        let directory = try TestNetwork.temporaryDirectory()
        let keyPath = directory + "/key"
        let keyBytes = [UInt8](repeating: 7, count: 32)
        XCTAssertTrue(FileManager.default.createFile(atPath: keyPath, contents: Data(keyBytes)))
        let backend = CryptoBackendSelection.best
        let key = SpipedKey(fileContents: keyBytes, backend: backend)
        let (sink, total) = try makeSink()
        defer { sink.stop() }

        // C spiped -e -> Swift -d -> sink
        var decryptConfiguration = ProxyConfiguration(mode: .decrypt, source: .ipv4("127.0.0.1", port: 0), target: sink.spec,
                                                      key: key, handshake: HandshakeOptions(), backend: backend)
        decryptConfiguration.maxConnections = 0
        let decrypt = try RunningProxy(decryptConfiguration)
        defer { decrypt.stop() }
        let referenceEncryptPort = try TestNetwork.unusedPort()
        let referenceEncrypt = try launch(["-e", "-s", "[127.0.0.1]:\(referenceEncryptPort)", "-t", "[127.0.0.1]:\(decrypt.address.port!)",
                                           "-k", keyPath, "-F", "-n", "0", "-p", directory + "/e.pid"])
        defer { referenceEncrypt.terminate(); referenceEncrypt.waitUntilExit() }

        // Swift -e -> C spiped -d -> sink
        let referenceDecryptPort = try TestNetwork.unusedPort()
        let referenceDecrypt = try launch(["-d", "-s", "[127.0.0.1]:\(referenceDecryptPort)", "-t", "[127.0.0.1]:\(sink.address.port!)",
                                           "-k", keyPath, "-F", "-n", "0", "-p", directory + "/d.pid"])
        defer { referenceDecrypt.terminate(); referenceDecrypt.waitUntilExit() }
        var encryptConfiguration = ProxyConfiguration(mode: .encrypt, source: .ipv4("127.0.0.1", port: 0),
                                                      target: .ipv4("127.0.0.1", port: referenceDecryptPort),
                                                      key: key, handshake: HandshakeOptions(), backend: backend)
        encryptConfiguration.maxConnections = 0
        let encrypt = try RunningProxy(encryptConfiguration)
        defer { encrypt.stop() }
        usleep(300_000)

        let referenceEntry = try AddressResolver.resolve(.ipv4("127.0.0.1", port: referenceEncryptPort))[0]
        try measureOneWay(through: referenceEntry, sinkTotal: total, label: "C spiped -e -> swift -d")
        try measureOneWay(through: encrypt.address, sinkTotal: total, label: "swift -e -> C spiped -d")
    }

    private func launch(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/spiped")
        process.arguments = arguments
        try process.run()
        return process
    }
}
