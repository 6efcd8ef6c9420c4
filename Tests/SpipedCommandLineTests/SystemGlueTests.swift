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
        XCTAssertThrowsError(try Privileges.resolve(PrivilegeDropSpec(user: "no-such-user-xyz", group: nil))) { error in
            XCTAssertEqual(error as? PrivilegeError, .noSuchUser("no-such-user-xyz"))
        }
        XCTAssertThrowsError(try Privileges.resolve(PrivilegeDropSpec(user: nil, group: "no-such-group-xyz"))) { error in
            XCTAssertEqual(error as? PrivilegeError, .noSuchGroup("no-such-group-xyz"))
        }
        // A numeric uid without a password entry has no known group unless one is given.
        XCTAssertThrowsError(try Privileges.resolve(PrivilegeDropSpec(user: "4000000001", group: nil))) { error in
            XCTAssertEqual(error as? PrivilegeError, .noGroupForUser("4000000001"))
        }
        XCTAssertEqual(try Privileges.resolve(PrivilegeDropSpec(user: "4000000001", group: "4000000002")),
                       ResolvedPrivileges(userID: 4_000_000_001, groupID: 4_000_000_002, supplementaryGroups: [4_000_000_002]))
    }

    /// A user alone takes its primary group and group-database memberships (initgroups); a
    /// named group is the only group. Debian's `nobody` has primary group 65534 (`nogroup`).
    func testResolvedIdsOfNobody() throws {
        guard getpwnam("nobody")?.pointee.pw_uid == 65534, getgrnam("nogroup") != nil else {
            throw XCTSkip("no Debian-style nobody/nogroup here")
        }
        let nobody = ResolvedPrivileges(userID: 65534, groupID: 65534, supplementaryGroups: [65534])
        XCTAssertEqual(try Privileges.resolve(PrivilegeDropSpec(user: "nobody", group: nil)), nobody)
        XCTAssertEqual(try Privileges.resolve(PrivilegeDropSpec(user: "65534", group: nil)), nobody)
        XCTAssertEqual(try Privileges.resolve(PrivilegeDropSpec(user: "nobody", group: "root")),
                       ResolvedPrivileges(userID: 65534, groupID: 0, supplementaryGroups: [0]))
        XCTAssertEqual(try Privileges.resolve(PrivilegeDropSpec(user: nil, group: "nogroup")),
                       ResolvedPrivileges(userID: nil, groupID: 65534, supplementaryGroups: [65534]))
    }
}
