import Foundation
import Glibc
import SpipedSystem
import XCTest

/// `ServiceNotifier` (sd_notify) and `SocketActivation` (sd_listen_fds) against real sockets.
final class SystemdProtocolTests: XCTestCase {
    // MARK: ServiceNotifier

    /// A bound, non-blocking `SOCK_DGRAM` Unix socket standing in for systemd's notify socket.
    private func datagramReceiver(at address: SocketAddress) throws -> FileDescriptor {
        let raw = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        XCTAssertGreaterThanOrEqual(raw, 0)
        let fd = FileDescriptor(rawValue: raw)
        try fd.bind(to: address)
        TestNetwork.setReceiveTimeout(fd, seconds: 2)
        return fd
    }

    private func receiveDatagram(_ fd: FileDescriptor) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    private func withEnvironment<Value>(_ name: String, _ value: String?, _ body: () throws -> Value) rethrows -> Value {
        let saved = getenv(name).map { String(cString: $0) }
        if let value { setenv(name, value, 1) } else { unsetenv(name) }
        defer { if let saved { setenv(name, saved, 1) } else { unsetenv(name) } }
        return try body()
    }

    func testNotifierSendsKeyValueLinesToAPathSocket() throws {
        let directory = try TestNetwork.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notify"
        let receiver = try datagramReceiver(at: SocketAddress(unixPath: path)!)
        defer { receiver.close() }

        let notifier = try XCTUnwrap(withEnvironment("NOTIFY_SOCKET", path) { ServiceNotifier.fromEnvironment() })
        XCTAssertEqual(notifier.address, SocketAddress(unixPath: path))
        XCTAssertNoThrow(try notifier.ready().get())
        XCTAssertEqual(try receiveDatagram(receiver), "READY=1\n")
        XCTAssertNoThrow(try notifier.reloading(monotonicMicroseconds: 1_234_567).get())
        XCTAssertEqual(try receiveDatagram(receiver), "RELOADING=1\nMONOTONIC_USEC=1234567\n")
        XCTAssertNoThrow(try notifier.stopping(status: "draining 3 connections").get())
        XCTAssertEqual(try receiveDatagram(receiver), "STOPPING=1\nSTATUS=draining 3 connections\n")
        XCTAssertNoThrow(try notifier.status("two\nlines").get())
        XCTAssertEqual(try receiveDatagram(receiver), "STATUS=two lines\n", "a newline in a value must not start a new assignment")
        XCTAssertNoThrow(try notifier.ready(status: "4 pipes").get())
        XCTAssertEqual(try receiveDatagram(receiver), "READY=1\nSTATUS=4 pipes\n")
    }

    func testReloadingDefaultsToTheMonotonicClockInMicroseconds() throws {
        let directory = try TestNetwork.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notify"
        let receiver = try datagramReceiver(at: SocketAddress(unixPath: path)!)
        defer { receiver.close() }
        let notifier = try XCTUnwrap(ServiceNotifier(socketName: path))
        let before = MonotonicClock.nanoseconds / 1000
        XCTAssertNoThrow(try notifier.reloading().get())
        let after = MonotonicClock.nanoseconds / 1000
        let lines = try receiveDatagram(receiver).split(separator: "\n")
        XCTAssertEqual(lines.first, "RELOADING=1")
        let microseconds = try XCTUnwrap(lines.last.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) })
        XCTAssertTrue(lines.last?.hasPrefix("MONOTONIC_USEC=") ?? false)
        XCTAssertTrue((before...after).contains(microseconds), "\(microseconds) not in \(before)...\(after)")
    }

    func testNotifierReachesAnAbstractSocket() throws {
        let name = "spiped-test-notify-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let address = try XCTUnwrap(SocketAddress(abstractUnixName: name))
        let receiver = try datagramReceiver(at: address)
        defer { receiver.close() }
        let notifier = try XCTUnwrap(ServiceNotifier(socketName: "@" + name))
        XCTAssertEqual(notifier.address, address)
        XCTAssertNoThrow(try notifier.notify([("READY", "1"), ("STATUS", "abstract")]).get())
        XCTAssertEqual(try receiveDatagram(receiver), "READY=1\nSTATUS=abstract\n")
    }

    func testNotifierRefusesUnusableSocketNamesAndKeys() throws {
        XCTAssertNil(withEnvironment("NOTIFY_SOCKET", nil) { ServiceNotifier.fromEnvironment() })
        XCTAssertNil(ServiceNotifier(socketName: ""))
        XCTAssertNil(ServiceNotifier(socketName: "relative/notify"))
        XCTAssertNil(ServiceNotifier(socketName: "vsock:2:1234"))
        XCTAssertNil(ServiceNotifier(socketName: "/" + String(repeating: "x", count: 200)))
        XCTAssertNil(ServiceNotifier(socketName: "@" + String(repeating: "x", count: 120)))
        XCTAssertNotNil(ServiceNotifier(socketName: "@" + String(repeating: "x", count: 107)), "sun_path holds the NUL and 107 bytes")
        XCTAssertNil(ServiceNotifier.message([("A=B", "1")]))
        XCTAssertNil(ServiceNotifier.message([("", "1")]))
        XCTAssertNil(ServiceNotifier.message([("A\nB", "1")]))
        let notifier = try XCTUnwrap(ServiceNotifier(socketName: "/nonexistent/notify"))
        guard case .failure(let error) = notifier.notify([("READY=", "1")]) else { return XCTFail("bad key sent") }
        XCTAssertEqual(error.errno, .invalidArgument)
    }

    func testNotifierUnsetsTheVariableOnRequest() throws {
        withEnvironment("NOTIFY_SOCKET", "/run/systemd/notify") {
            XCTAssertNotNil(ServiceNotifier.fromEnvironment())
            XCTAssertNotNil(getenv("NOTIFY_SOCKET"), "kept by default")
            XCTAssertNotNil(ServiceNotifier.fromEnvironment(unsettingEnvironment: true))
            XCTAssertNil(getenv("NOTIFY_SOCKET"))
        }
    }

    func testNotifierReportsFailureWithoutBlocking() throws {
        let directory = try TestNetwork.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notify"
        let nobody = try XCTUnwrap(ServiceNotifier(socketName: path))
        guard case .failure(let missing) = nobody.ready() else { return XCTFail("sent to a socket that does not exist") }
        XCTAssertEqual(missing.errno, .noSuchFileOrDirectory)

        // A receiver that never reads: its queue fills and sends fail with EAGAIN instead of waiting.
        let receiver = try datagramReceiver(at: SocketAddress(unixPath: path)!)
        defer { receiver.close() }
        let started = MonotonicClock.nanoseconds
        var failure: SystemError?
        for _ in 0..<100_000 {
            if case .failure(let error) = nobody.status(String(repeating: "s", count: 1000)) { failure = error; break }
        }
        XCTAssertEqual(failure?.errno, .wouldBlock)
        XCTAssertLessThan(MonotonicClock.nanoseconds - started, 5_000_000_000)
    }

    // MARK: SocketActivation

    /// Places `descriptors` at consecutive numbers starting at a free `base` (dup2) and closes
    /// the originals; returns the base.
    private func placeConsecutively(_ descriptors: [FileDescriptor]) throws -> Int32 {
        var base: Int32 = 400
        search: while base < 900 {
            for offset in 0..<Int32(descriptors.count) where fcntl(base + offset, F_GETFD) != -1 {
                base += 10
                continue search
            }
            break
        }
        for (offset, descriptor) in descriptors.enumerated() {
            XCTAssertEqual(dup2(descriptor.rawValue, base + Int32(offset)), base + Int32(offset))
            descriptor.close()
        }
        return base
    }

    private func listeningSocket() throws -> FileDescriptor {
        let fd = try FileDescriptor.streamSocket(family: AF_INET)
        try fd.setNonBlocking(false)  // systemd passes blocking sockets unless NonBlocking=yes
        try fd.bind(to: AddressResolver.resolve(.ipv4("127.0.0.1", port: 0))[0])
        try fd.listen()
        return fd
    }

    private func activationEnvironment(count: Int, names: String? = nil, pid: Int32 = getpid()) -> [String: String] {
        var environment = ["LISTEN_PID": String(pid), "LISTEN_FDS": String(count)]
        environment["LISTEN_FDNAMES"] = names
        return environment
    }

    func testActivationTakesNamedListenersAndPreparesThem() throws {
        let first = try listeningSocket(), second = try listeningSocket()
        let addresses = [try first.localAddress(), try second.localAddress()]
        // Clear close-on-exec, as a descriptor inherited over exec has it.
        _ = fcntl(first.rawValue, F_SETFD, 0)
        let base = try placeConsecutively([first, second])
        defer { close(base); close(base + 1) }

        let listeners = try SocketActivation.listeners(environment: activationEnvironment(count: 2, names: "redis:web"),
                                                      processID: getpid(), firstDescriptor: base)
        XCTAssertEqual(listeners, [
            InheritedListener(name: "redis", descriptor: FileDescriptor(rawValue: base), localAddress: addresses[0]),
            InheritedListener(name: "web", descriptor: FileDescriptor(rawValue: base + 1), localAddress: addresses[1]),
        ])
        for listener in listeners {
            XCTAssertNotEqual(fcntl(listener.descriptor.rawValue, F_GETFD) & FD_CLOEXEC, 0, "close-on-exec")
            XCTAssertNotEqual(fcntl(listener.descriptor.rawValue, F_GETFL) & O_NONBLOCK, 0, "non-blocking")
        }
        // They really are the listeners: a connection to the first is accepted on it.
        let client = try TestNetwork.connect(to: addresses[0])
        defer { client.close() }
        var accepted: FileDescriptor?
        for _ in 0..<200 where accepted == nil {
            if case .success(let (fd, _)) = listeners[0].descriptor.acceptResult() { accepted = fd } else { usleep(5000) }
        }
        XCTAssertNotNil(accepted)
        accepted?.close()
    }

    func testActivationWithoutNamesGivesNilNames() throws {
        let base = try placeConsecutively([try listeningSocket()])
        defer { close(base) }
        let listeners = try SocketActivation.listeners(environment: activationEnvironment(count: 1), processID: getpid(), firstDescriptor: base)
        XCTAssertEqual(listeners.count, 1)
        XCTAssertNil(listeners.first?.name)
    }

    func testActivationIgnoresVariablesMeantForAnotherProcessOrAbsent() throws {
        XCTAssertEqual(try SocketActivation.listeners(environment: [:], processID: getpid(), firstDescriptor: 3), [])
        XCTAssertEqual(try SocketActivation.listeners(environment: activationEnvironment(count: 1, pid: getpid() + 1),
                                                      processID: getpid(), firstDescriptor: 3), [])
        XCTAssertEqual(try SocketActivation.listeners(environment: ["LISTEN_PID": String(getpid())], processID: getpid(), firstDescriptor: 3), [])
    }

    func testActivationRejectsBadVariables() {
        func failure(_ environment: [String: String]) -> SocketActivationError? {
            do {
                _ = try SocketActivation.listeners(environment: environment, processID: 4242, firstDescriptor: 700)
                return nil
            } catch {
                return error
            }
        }
        for pid in ["", "x", "-1", "0", "4242 ", "+4242", "99999999999999999999"] {
            XCTAssertEqual(failure(["LISTEN_PID": pid, "LISTEN_FDS": "1"]), .invalidProcessID(pid), pid)
        }
        for count in ["", "0", "-1", "one", "1.0", "2147483647"] {
            XCTAssertEqual(failure(["LISTEN_PID": "4242", "LISTEN_FDS": count]), .invalidDescriptorCount(count), count)
        }
        XCTAssertEqual(failure(["LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "one"]), .nameCountMismatch(names: 1, descriptors: 2))
        XCTAssertEqual(failure(["LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"]), .nameCountMismatch(names: 2, descriptors: 1))
    }

    func testActivationRejectsDescriptorsThatAreNotListeningStreamSockets() throws {
        func failure(_ descriptor: Int32) -> SocketActivationError? {
            do {
                _ = try SocketActivation.listeners(environment: activationEnvironment(count: 1), processID: getpid(), firstDescriptor: descriptor)
                return nil
            } catch {
                return error
            }
        }
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]); close(ends[1]) }
        XCTAssertEqual(failure(ends[0]), .notASocket(descriptor: ends[0]))

        let (left, right) = try FileDescriptor.socketPair()
        defer { left.close(); right.close() }
        XCTAssertEqual(failure(left.rawValue), .notListening(descriptor: left.rawValue))

        let datagram = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(datagram) }
        XCTAssertEqual(failure(datagram), .notAStreamSocket(descriptor: datagram))

        let unlistened = try FileDescriptor.streamSocket(family: AF_INET)
        defer { unlistened.close() }
        XCTAssertEqual(failure(unlistened.rawValue), .notListening(descriptor: unlistened.rawValue))

        let closed = try placeConsecutively([try listeningSocket()])
        close(closed)
        XCTAssertEqual(failure(closed), .notOpen(descriptor: closed))
    }

    func testInheritedListenersReadsAndUnsetsTheProcessEnvironment() throws {
        // Variables for another process: nothing is taken, and all three are removed.
        setenv("LISTEN_PID", String(getpid() + 1), 1)
        setenv("LISTEN_FDS", "1", 1)
        setenv("LISTEN_FDNAMES", "redis", 1)
        XCTAssertEqual(try SocketActivation.inheritedListeners(), [])
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { XCTAssertNil(getenv(name), name) }
        // Bad variables: an error, and the variables are removed all the same.
        setenv("LISTEN_PID", "nonsense", 1)
        XCTAssertThrowsError(try SocketActivation.inheritedListeners())
        XCTAssertNil(getenv("LISTEN_PID"))
        XCTAssertEqual(try SocketActivation.inheritedListeners(), [], "no variables: not activated")
    }
}
