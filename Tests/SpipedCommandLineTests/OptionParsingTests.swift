import SpipedCommandLine
import SpipedSystem
import XCTest

/// The typed results and messages of the option parsers (the accept/refuse decisions
/// themselves are checked against the reference in ReferenceDecisionTests).
final class OptionParsingTests: XCTestCase {
    let base = ["-s", "[127.0.0.1]:8001", "-t", "example.com:8002", "-k", "/k"]

    func options(_ extra: [String], mode: String = "-d") throws -> SpipedOptions {
        guard case .run(let options) = try SpipedOptions.parse([mode] + base + extra) else {
            XCTFail("not a run")
            throw CommandLineError.usage("not a run")
        }
        return options
    }

    func refusal(_ arguments: [String]) -> CommandLineError? {
        do {
            _ = try SpipedOptions.parse(arguments)
            return nil
        } catch {
            return error
        }
    }

    func testDefaultsMatchTheReference() throws {
        let o = try options([])
        XCTAssertEqual(o.mode, .decrypt)
        XCTAssertEqual(o.source, .ipv4("127.0.0.1", port: 8001))
        XCTAssertEqual(o.target, .hostName("example.com", port: 8002))
        XCTAssertEqual(o.keyFilePath, "/k")
        XCTAssertEqual(o.maxConnections, 100)
        XCTAssertEqual(o.timeoutSeconds, 5)
        XCTAssertEqual(o.resolveIntervalSeconds, 60)
        XCTAssertEqual(o.pidFilePath, "[127.0.0.1]:8001.pid")
        XCTAssertFalse(o.foreground)
        XCTAssertFalse(o.waitForDNS)
        XCTAssertTrue(o.keepAlive)
        XCTAssertFalse(o.fast)
        XCTAssertFalse(o.requireForwardSecrecy)
        XCTAssertFalse(o.useSyslog)
        XCTAssertNil(o.privileges)
        XCTAssertNil(o.bindAddress)
    }

    func testEveryOptionLandsInItsField() throws {
        let o = try options(["-DFjf", "-n", "0x20", "-o", "1.5", "-r", "7", "-p", "/run/x.pid", "--syslog",
                             "-u", "nobody:nogroup", "-b", "[::1]"], mode: "-e")
        XCTAssertEqual(o.mode, .encrypt)
        XCTAssertTrue(o.waitForDNS)
        XCTAssertTrue(o.foreground)
        XCTAssertFalse(o.keepAlive)
        XCTAssertTrue(o.fast)
        XCTAssertEqual(o.maxConnections, 32)
        XCTAssertEqual(o.timeoutSeconds, 1.5)
        XCTAssertEqual(o.resolveIntervalSeconds, 7)
        XCTAssertEqual(o.pidFilePath, "/run/x.pid")
        XCTAssertTrue(o.useSyslog)
        XCTAssertEqual(o.privileges, PrivilegeDropSpec(user: "nobody", group: "nogroup"))
        XCTAssertEqual(o.bindAddress, .ipv6("::1", port: 0))
    }

    func testNumberEdgeCases() throws {
        XCTAssertEqual(try options(["-n", "0"]).maxConnections, 0)
        // A negative count wraps around in C (strtoull) and means "no limit" here.
        XCTAssertEqual(try options(["-n", "-5"]).maxConnections, 0)
        XCTAssertEqual(try options(["-n", "010"]).maxConnections, 8)
        XCTAssertEqual(try options(["-o", "0"]).timeoutSeconds, 5)
        XCTAssertEqual(try options(["-o", "inf"]).timeoutSeconds, .infinity)
        XCTAssertEqual(try options(["-r", "0"]).resolveIntervalSeconds, 60)
        XCTAssertNil(try options(["-R"]).resolveIntervalSeconds)
        XCTAssertNil(try options(["-r", "60", "-R"]).resolveIntervalSeconds)
        XCTAssertNil(try options(["-r", "inf"]).resolveIntervalSeconds)
    }

    func testUnixSourcePidFile() throws {
        guard case .run(let o) = try SpipedOptions.parse(["-e", "-s", "/tmp/u.sock", "-t", "[::1]:1", "-k", "k"]) else {
            return XCTFail("not a run")
        }
        XCTAssertEqual(o.pidFilePath, "/tmp/u.sock.pid")
    }

    func testMessages() {
        XCTAssertEqual(refusal(["-e"] + base + ["-o", "-1"]), .numberOutOfRange(option: "-o", value: "-1"))
        XCTAssertEqual(refusal(["-e"] + base + ["-o", "-1"])?.message, "Error parsing argument: -o -1: Numerical result out of range")
        XCTAssertEqual(refusal(["-e"] + base + ["-n", "abc"]), .invalidNumber(option: "-n", value: "abc"))
        XCTAssertEqual(refusal(["-e"] + base + ["-x"]), .illegalOption("-x"))
        XCTAssertEqual(refusal(["-e"] + base + ["--syslog=1"]), .illegalOption("--syslog"))
        XCTAssertEqual(refusal(["-e"] + base + ["-p"]), .missingArgument("-p"))
        XCTAssertEqual(refusal(["-e", "-s", "[1.2.3]:1", "-t", "a:1", "-k", "k"]),
                       .invalidAddress(option: "-s", value: "[1.2.3]:1", .invalidAddressLiteral("1.2.3")))
        XCTAssertEqual(refusal(["-e"] + base + ["-u", "x:"]), .invalidPrivileges(value: "x:", .emptyGroupName("x:")))
        let text = refusal(["-e"] + base + ["-e"])!.rendered(program: "spiped", usage: SpipedUsage.text)
        XCTAssertTrue(text.hasPrefix("spiped: "))
        XCTAssertTrue(text.contains("usage: spiped {-e | -d}"))
        XCTAssertEqual(refusal(["-e"] + base + ["-o", "abc"])!.rendered(program: "spiped", usage: SpipedUsage.text),
                       "spiped: Error parsing argument: -o abc: Invalid argument\n")
    }

    func testSpipe() throws {
        guard case .run(let o) = try SpipeOptions.parse(["-t", "/tmp/s", "-k", "-", "-jg", "-o", "2", "-b", "127.0.0.1"]) else {
            return XCTFail("not a run")
        }
        XCTAssertEqual(o.target, .unix(path: "/tmp/s"))
        XCTAssertEqual(o.keyFilePath, "-")
        XCTAssertFalse(o.keepAlive)
        XCTAssertTrue(o.requireForwardSecrecy)
        XCTAssertFalse(o.fast)
        XCTAssertEqual(o.timeoutSeconds, 2)
        XCTAssertEqual(o.bindAddress, .ipv4("127.0.0.1", port: 0))
        XCTAssertEqual(try SpipeOptions.parse(["-v", "-x"]), .showVersion)
        XCTAssertThrowsError(try SpipeOptions.parse(["-t", "/tmp/s", "-k", "k", "-b", "[1.2.3]"]))
    }

    func testPrivilegeSpecs() throws {
        XCTAssertEqual(try PrivilegeDropSpec.parse("alice"), PrivilegeDropSpec(user: "alice", group: nil))
        XCTAssertEqual(try PrivilegeDropSpec.parse(":staff"), PrivilegeDropSpec(user: nil, group: "staff"))
        XCTAssertEqual(try PrivilegeDropSpec.parse("alice:staff"), PrivilegeDropSpec(user: "alice", group: "staff"))
        XCTAssertThrowsError(try PrivilegeDropSpec.parse(""))
        XCTAssertThrowsError(try PrivilegeDropSpec.parse(":"))
        XCTAssertThrowsError(try PrivilegeDropSpec.parse("alice:"))
    }

    func testOptionScannerStopsAtOperands() {
        // Options after the first operand are not options (POSIX getopt): this is an extra word.
        XCTAssertEqual(refusal(["-e", "extra"] + base), .usage("unexpected argument: extra"))
        XCTAssertEqual(refusal(["-e"] + base + ["--", "-F"]), .usage("unexpected argument: -F"))
    }
}
