import Foundation
import SpipedSystem
import XCTest

/// The parts of the daemon plumbing that can run inside the test process (daemonizing itself,
/// privilege drops and syslog are exercised by Tests/Integration against real processes).
final class SystemGlueTests: XCTestCase {
    func testPidFileHoldsOurPidWithoutNewline() throws {
        let path = NSTemporaryDirectory() + "spiped-test-\(getpid()).pid"
        defer { unlink(path) }
        try "something longer than a pid\n".write(toFile: path, atomically: false, encoding: .utf8)
        try Daemon.writePidFile(path: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), String(getpid()))
    }

    func testUnwritablePidFileIsATypedError() {
        XCTAssertThrowsError(try Daemon.writePidFile(path: "/nonexistent-dir/x.pid")) { error in
            XCTAssertEqual(error as? DaemonError, .pidFileUnwritable(path: "/nonexistent-dir/x.pid", errno: ENOENT))
            XCTAssertEqual((error as? DaemonError)?.message, "Cannot write pid file /nonexistent-dir/x.pid: No such file or directory")
        }
    }

    func testUnknownUserAndGroupAreRefusedBeforeAnyChange() {
        XCTAssertThrowsError(try Privileges.drop(to: PrivilegeDropSpec(user: "no-such-user-xyz", group: nil))) { error in
            XCTAssertEqual(error as? PrivilegeError, .noSuchUser("no-such-user-xyz"))
        }
        XCTAssertThrowsError(try Privileges.drop(to: PrivilegeDropSpec(user: nil, group: "no-such-group-xyz"))) { error in
            XCTAssertEqual(error as? PrivilegeError, .noSuchGroup("no-such-group-xyz"))
        }
    }
}
