import Foundation
import Glibc
import SpipedCrypto
import SpipedCryptoAccelerated
import SpipedProtocol
import SpipedProxy
import SpipedSystem
import XCTest

/// Blocking sockets, servers and proxies for the in-process engine tests.
enum TestNetwork {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// A blocking client socket connected to `address`, with a receive timeout.
    static func connect(to address: SocketAddress, receiveTimeout: Double = 10) throws -> FileDescriptor {
        let fd = try FileDescriptor.streamSocket(family: address.family)
        try fd.setNonBlocking(false)
        _ = try fd.connect(to: address)
        setReceiveTimeout(fd, seconds: receiveTimeout)
        return fd
    }

    static func setReceiveTimeout(_ fd: FileDescriptor, seconds: Double) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd.rawValue, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    static func send(_ bytes: [UInt8], to fd: FileDescriptor) throws {
        try bytes.withUnsafeBytes { try fd.writeAll($0) }
    }

    /// Reads until end of file (throws on timeout or error).
    static func receiveAll(from fd: FileDescriptor) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
            if count == 0 { return result }
            result += buffer[0..<count]
        }
    }

    /// Reads exactly `count` bytes (throws on timeout, error or early end of file).
    static func receive(_ count: Int, from fd: FileDescriptor) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < count {
            let want = min(buffer.count, count - result.count)
            let got = try buffer.withUnsafeMutableBytes { try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            if got == 0 { throw Failure(description: "end of file after \(result.count) of \(count) bytes") }
            result += buffer[0..<got]
        }
        return result
    }

    /// Waits up to `seconds` for end of file or a reset; true if the connection was closed.
    static func closedByPeer(_ fd: FileDescriptor, within seconds: Double) -> Bool {
        setReceiveTimeout(fd, seconds: seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let result = buffer.withUnsafeMutableBytes { fd.readResult(into: $0) }
            switch result {
            case .success(0): return true
            case .success: continue
            case .failure(let errno): return errno.isConnectionClosure
            }
        }
    }

    /// Test data (not secret): SplitMix64 from a random seed, 8 bytes per step.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var state = UInt64.random(in: .min ... .max)
        var bytes = [UInt8](repeating: 0, count: count + 8)
        bytes.withUnsafeMutableBytes { raw in
            for offset in stride(from: 0, to: count, by: 8) {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                raw.storeBytes(of: z ^ (z >> 31), toByteOffset: offset, as: UInt64.self)
            }
        }
        return Array(bytes.prefix(count))
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "spiped-proxy-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A closed loopback port (nothing listens there).
    static func unusedPort() throws -> UInt16 {
        let probe = try FileDescriptor.streamSocket(family: AF_INET)
        defer { probe.close() }
        try probe.bind(to: AddressResolver.resolve(.ipv4("127.0.0.1", port: 0))[0])
        return try probe.localAddress().port!
    }
}

/// A blocking test server: accepts on its own thread and runs `handler` per connection on
/// another thread; counts connections.
final class TestServer: @unchecked Sendable {
    let listener: FileDescriptor
    let address: SocketAddress
    private let lock = NSLock()
    private var accepted = 0
    private var peers: [SocketAddress] = []
    private var thread: SystemThread?

    var acceptedCount: Int { lock.withLock { accepted } }
    /// The address of each accepted peer, in order.
    var acceptedPeers: [SocketAddress] { lock.withLock { peers } }

    /// `spec` is a loopback or Unix address; `handler` owns (and closes) each connection.
    init(_ spec: AddressSpec = .ipv4("127.0.0.1", port: 0), handler: @escaping @Sendable (FileDescriptor) -> Void) throws {
        let bindAddress = try AddressResolver.resolve(spec, passive: true)[0]
        listener = try FileDescriptor.streamSocket(family: bindAddress.family)
        try listener.setNonBlocking(false)
        if bindAddress.isInternet { try listener.setReuseAddress() }
        try listener.bind(to: bindAddress)
        try listener.listen()
        address = try listener.localAddress()
        let listener = self.listener
        thread = try SystemThread(name: "test-server") { [self] in
            while true {
                guard let (fd, peer) = try? listener.accept() else { return }
                lock.withLock {
                    accepted += 1
                    if let peer { peers.append(peer) }
                }
                try? fd.setNonBlocking(false)
                TestNetwork.setReceiveTimeout(fd, seconds: 20)
                let worker = try? SystemThread(name: "test-conn") { handler(fd) }
                worker?.detach()
            }
        }
    }

    var spec: AddressSpec {
        if let path = address.unixPath { return .unix(path: path) }
        return .ipv4("127.0.0.1", port: address.port!)
    }

    func stop() {
        _ = listener.shutdownResult(.both)
        thread?.join()
        listener.close()
    }

    /// Echoes everything until end of file, then closes.
    static func echo(_ fd: FileDescriptor) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = (try? buffer.withUnsafeMutableBytes { try fd.read(into: $0) }) ?? 0
            if count == 0 { break }
            guard (try? buffer.withUnsafeBytes({ try fd.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<count])) })) != nil else { break }
        }
        _ = fd.shutdownResult(.write)
        fd.close()
    }
}

/// Collects the proxy's log lines.
final class LogRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(ProxyLogLevel, String)] = []

    var sink: @Sendable (ProxyLogLevel, String) -> Void {
        { [self] level, message in lock.withLock { lines.append((level, message)) } }
    }

    func warnings(containing text: String) -> [String] {
        lock.withLock { lines.filter { $0.0 == .warning && $0.1.contains(text) }.map(\.1) }
    }

    var all: [String] { lock.withLock { lines.map(\.1) } }
}

/// A proxy running `run()` on its own thread.
final class RunningProxy: @unchecked Sendable {
    let proxy: Proxy
    private var thread: SystemThread?
    private let lock = NSLock()
    private var finished = false
    private var result: ProxyError?
    private var runThread: pthread_t?

    /// The thread inside `run()` (to direct a signal at it).
    var runThreadID: pthread_t? { lock.withLock { runThread } }

    var address: SocketAddress { proxy.listeningAddress }
    var hasFinished: Bool { lock.withLock { finished } }

    /// The source spec to use as the next hop's target.
    var spec: AddressSpec {
        if let path = address.unixPath { return .unix(path: path) }
        return .ipv4("127.0.0.1", port: address.port!)
    }

    init(_ configuration: ProxyConfiguration) throws {
        proxy = try Proxy(configuration: configuration)
        let proxy = self.proxy
        thread = try SystemThread(name: "test-proxy") { [self] in
            // Blocked before the thread is published, so a test's SIGTERM can never kill the process.
            TerminationSignals.blockInCallingThread()
            lock.withLock { runThread = pthread_self() }
            var failure: ProxyError?
            do throws(ProxyError) { try proxy.run() } catch { failure = error }
            lock.withLock {
                result = failure
                finished = true
            }
        }
    }

    /// Requests a stop and waits for `run()` to return; returns its error, if any.
    @discardableResult
    func stop() -> ProxyError? {
        proxy.requestStop()
        thread?.join()
        thread = nil
        return lock.withLock { result }
    }

    /// Polls until `condition` or `seconds` pass.
    static func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

/// Keys and configurations shared by the engine tests.
enum TestProxies {
    /// The engine is under test, not the crypto: use the fastest backend (portable when
    /// `SPIPED_FORCE_PORTABLE=1`).
    static let backend = CryptoBackendSelection.best
    static let keyA = SpipedKey(fileContents: Array("key A: 0123456789abcdef0123456789abcdef".utf8), backend: backend)
    static let keyB = SpipedKey(fileContents: Array("key B: fedcba9876543210fedcba9876543210".utf8), backend: backend)

    static func configuration(_ mode: ProxyConfiguration.Mode, source: AddressSpec = .ipv4("127.0.0.1", port: 0),
                              target: AddressSpec, key: SpipedKey = keyA, fast: Bool = true,
                              log: LogRecorder? = nil) -> ProxyConfiguration {
        var configuration = ProxyConfiguration(mode: mode, source: source, target: target, key: key,
                                               handshake: HandshakeOptions(fast: fast), backend: backend)
        configuration.eventLoopCount = 2
        if let log { configuration.log = log.sink }
        return configuration
    }
}
