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
        let pidFile = try PidFile.create(path: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), String(getpid()))
        pidFile.remove()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "removed at exit")
    }

    func testUnwritablePidFileIsATypedError() {
        XCTAssertThrowsError(try PidFile.create(path: "/nonexistent-dir/x.pid")) { error in
            XCTAssertEqual(error as? PidFileError, .unwritable(path: "/nonexistent-dir/x.pid", errno: ENOENT))
            XCTAssertEqual((error as? PidFileError)?.description, "Cannot write pid file /nonexistent-dir/x.pid: No such file or directory")
        }
    }

    func testLockedPidFileIsRefusedAndLeftAlone() throws {
        let path = NSTemporaryDirectory() + "spiped-test-locked-\(getpid()).pid"
        defer { unlink(path) }
        let first = try PidFile.create(path: path)
        // flock locks belong to the open file, so a second open in this process conflicts too.
        XCTAssertThrowsError(try PidFile.create(path: path)) { error in
            XCTAssertEqual(error as? PidFileError, .lockedByRunningProcess(path: path, pid: getpid()))
            XCTAssertEqual((error as? PidFileError)?.description, "pid file \(path) is locked by running process \(getpid())")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), String(getpid()))
        first.remove()
        let second = try PidFile.create(path: path)
        second.remove()
    }

    func testPidFileIsNotRemovedOnceReplaced() throws {
        let path = NSTemporaryDirectory() + "spiped-test-replaced-\(getpid()).pid"
        defer { unlink(path) }
        let pidFile = try PidFile.create(path: path)
        unlink(path)
        try "12345".write(toFile: path, atomically: false, encoding: .utf8)
        pidFile.remove()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "12345", "another file at the path is not ours to remove")
    }

    func testSymbolicLinkAsPidFileIsRefused() throws {
        let directory = NSTemporaryDirectory() + "spiped-test-link-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "keep".write(toFile: directory + "/victim", atomically: false, encoding: .utf8)
        XCTAssertEqual(symlink(directory + "/victim", directory + "/x.pid"), 0)
        XCTAssertThrowsError(try PidFile.create(path: directory + "/x.pid")) { error in
            XCTAssertEqual(error as? PidFileError, .symbolicLink(path: directory + "/x.pid"))
        }
        XCTAssertEqual(try String(contentsOfFile: directory + "/victim", encoding: .utf8), "keep")
    }

    func testHardLinkedPidFileIsRefusedAndLeftAlone() throws {
        let directory = NSTemporaryDirectory() + "spiped-test-hardlink-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "keep".write(toFile: directory + "/victim", atomically: false, encoding: .utf8)
        XCTAssertEqual(link(directory + "/victim", directory + "/x.pid"), 0)
        XCTAssertThrowsError(try PidFile.create(path: directory + "/x.pid")) { error in
            XCTAssertEqual(error as? PidFileError, .hardLinked(path: directory + "/x.pid"))
        }
        XCTAssertEqual(try String(contentsOfFile: directory + "/victim", encoding: .utf8), "keep")
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
