@testable import SpipedCommandLine
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
        XCTAssertEqual(try SpipeOptions.parse(["-v", "-x"]), .showVersion(onStandardOutput: false))
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

    // MARK: - This implementation's long options (/work/OPTIONS.md)

    func configuration(_ arguments: [String]) throws -> SpipedConfigurationOptions {
        guard case .runConfiguration(let options) = try SpipedOptions.parse(arguments) else {
            XCTFail("not a configuration run: \(arguments)")
            throw CommandLineError.usage("not a configuration run")
        }
        return options
    }

    func testNewOptionDefaults() throws {
        let o = try options([])
        XCTAssertEqual(o.logLevel, .warning)
        XCTAssertNil(o.metricsAddress)
        XCTAssertEqual(o.poolSize, 0)
        XCTAssertEqual(o.poolMaxAgeSeconds, 8)
        XCTAssertEqual(o.drainTimeoutSeconds, 0)
        XCTAssertNil(o.socketMode)
        XCTAssertNil(o.socketGroup)
    }

    func testHelpAndVersion() throws {
        XCTAssertEqual(try SpipedOptions.parse(["--help"]), .showHelp)
        XCTAssertEqual(try SpipedOptions.parse(["-h"]), .showHelp)
        XCTAssertEqual(try SpipedOptions.parse(["-e"] + base + ["-h"]), .showHelp)
        XCTAssertEqual(try SpipedOptions.parse(["--version"]), .showVersion(onStandardOutput: true))
        XCTAssertEqual(try SpipedOptions.parse(["-v"]), .showVersion(onStandardOutput: false))
        // As with -v, what follows is not looked at, and an error before it wins.
        XCTAssertEqual(try SpipedOptions.parse(["--help", "-x", "extra"]), .showHelp)
        XCTAssertEqual(try SpipedOptions.parse(["-v", "--help"]), .showVersion(onStandardOutput: false))
        XCTAssertEqual(try SpipedOptions.parse(["--version", "-v"]), .showVersion(onStandardOutput: true))
        XCTAssertEqual(refusal(["-x", "--help"]), .illegalOption("-x"))
        XCTAssertEqual(refusal(["--help=1"]), .illegalOption("--help"))
        XCTAssertEqual(refusal(["--helpme"]), .illegalOption("--helpme"))
        XCTAssertEqual(try SpipeOptions.parse(["--help"]), .showHelp)
        XCTAssertEqual(try SpipeOptions.parse(["-h", "-x"]), .showHelp)
        XCTAssertEqual(try SpipeOptions.parse(["--version"]), .showVersion(onStandardOutput: true))
        XCTAssertThrowsError(try SpipeOptions.parse(["--config", "/x"]))
        XCTAssertThrowsError(try SpipeOptions.parse(["-x", "-h"]))
    }

    func testHelpTextHasOneLinePerOptionWithItsDefault() {
        for option in SpipedUsage.optionGroups.flatMap({ $0.options }) + SpipeUsage.options {
            XCTAssertEqual(SpipedUsage.help.contains("  \(option.synopsis) ") || SpipeUsage.help.contains("  \(option.synopsis) "), true)
            let isAction = option.synopsis.hasPrefix("-h") || option.synopsis.hasPrefix("-v") || option.synopsis.hasPrefix("--version")
            let mode = option.synopsis == "-e" || option.synopsis == "-d"
            if !isAction && !mode {
                XCTAssertTrue(option.description.contains("default") || option.description.contains("required"), option.synopsis)
            }
        }
        // Every option the parser knows is described.
        for definition in SpipedOptions.scanner.definitions {
            XCTAssertTrue(SpipedUsage.help.contains("  \(definition.name) ") || SpipedUsage.help.contains(", \(definition.name) ")
                          || SpipedUsage.help.contains("  \(definition.name),"), definition.name)
        }
        for definition in SpipeOptions.scanner.definitions {
            XCTAssertTrue(SpipeUsage.help.contains("  \(definition.name) ") || SpipeUsage.help.contains(", \(definition.name) ")
                          || SpipeUsage.help.contains("  \(definition.name),"), definition.name)
        }
    }

    func testLogLevel() throws {
        for level in SpipedLogLevel.allCases {
            XCTAssertEqual(try options(["--log-level", level.rawValue]).logLevel, level)
        }
        XCTAssertEqual(try options(["--log-level=debug"]).logLevel, .debug)
        XCTAssertEqual(refusal(["-e"] + base + ["--log-level", "verbose"]),
                       .invalidValue(option: "--log-level", value: "verbose", reason: "use error, warning, info or debug"))
        XCTAssertEqual(refusal(["-e"] + base + ["--log-level", "INFO"])?.showsUsage, false)
        XCTAssertEqual(refusal(["-e"] + base + ["--log-level"]), .missingArgument("--log-level"))
        XCTAssertEqual(refusal(["-e"] + base + ["--log-level", "info", "--log-level", "info"]),
                       .usage("option --log-level given more than once"))
    }

    func testMetrics() throws {
        XCTAssertEqual(try options(["--metrics", "[127.0.0.1]:9090"]).metricsAddress, .ipv4("127.0.0.1", port: 9090))
        XCTAssertEqual(try options(["--metrics=[::1]:9090"]).metricsAddress, .ipv6("::1", port: 9090))
        XCTAssertEqual(try options(["--metrics", "localhost:9090"]).metricsAddress, .hostName("localhost", port: 9090))
        XCTAssertEqual(refusal(["-e"] + base + ["--metrics", "[127.0.0.1]"]),
                       .invalidAddress(option: "--metrics", value: "[127.0.0.1]", .missingPort("[127.0.0.1]")))
        XCTAssertEqual(refusal(["-e"] + base + ["--metrics", "[127.0.0.1]:0"]),
                       .invalidAddress(option: "--metrics", value: "[127.0.0.1]:0", .invalidPort("0")))
        if case .invalidValue(let option, _, _)? = refusal(["-e"] + base + ["--metrics", "/run/m.sock"]) {
            XCTAssertEqual(option, "--metrics")
        } else {
            XCTFail("a Unix path was accepted for --metrics")
        }
    }

    func testPool() throws {
        let o = try options(["--pool", "4", "--pool-max-age", "2.5"], mode: "-e")
        XCTAssertEqual(o.poolSize, 4)
        XCTAssertEqual(o.poolMaxAgeSeconds, 2.5)
        XCTAssertEqual(try options(["--pool=0x10"], mode: "-e").poolSize, 16)
        XCTAssertEqual(try options(["--pool", "0"], mode: "-e").poolSize, 0)
        XCTAssertEqual(try options(["--pool", "1000"], mode: "-e").poolSize, SpipedOptions.maximumPoolSize)
        XCTAssertEqual(try options(["--pool", "1", "--pool-max-age", "inf"], mode: "-e").poolMaxAgeSeconds, .infinity)
        XCTAssertEqual(refusal(["-e"] + base + ["--pool", "1001"]), .numberOutOfRange(option: "--pool", value: "1001"))
        XCTAssertEqual(refusal(["-e"] + base + ["--pool", "-1"]), .numberOutOfRange(option: "--pool", value: "-1"))
        XCTAssertEqual(refusal(["-e"] + base + ["--pool", "many"]), .invalidNumber(option: "--pool", value: "many"))
        XCTAssertEqual(refusal(["-e"] + base + ["--pool", "1", "--pool-max-age", "nan"]),
                       .invalidNumber(option: "--pool-max-age", value: "nan"))
        XCTAssertEqual(refusal(["-e"] + base + ["--pool", "1", "--pool-max-age", "-1"]),
                       .numberOutOfRange(option: "--pool-max-age", value: "-1"))
        XCTAssertEqual(refusal(["-e"] + base + ["--pool", "1", "--pool-max-age", "0"]),
                       .invalidValue(option: "--pool-max-age", value: "0", reason: "the age must be a positive number of seconds"))
        // -e only, and the age only with a pool.
        XCTAssertEqual(refusal(["-d"] + base + ["--pool", "1"]),
                       .usage("--pool needs -e (it keeps connections to the -d end handshaken ahead of time)"))
        XCTAssertEqual(refusal(["-d"] + base + ["--pool-max-age", "3"]), .usage("--pool-max-age needs -e and --pool"))
        XCTAssertEqual(refusal(["-e"] + base + ["--pool-max-age", "3"]), .usage("--pool-max-age needs --pool"))
    }

    func testDrainTimeout() throws {
        XCTAssertEqual(try options(["--drain-timeout", "30"]).drainTimeoutSeconds, 30)
        XCTAssertEqual(try options(["--drain-timeout", "0.5"]).drainTimeoutSeconds, 0.5)
        XCTAssertEqual(try options(["--drain-timeout", "0"]).drainTimeoutSeconds, 0)
        XCTAssertEqual(try options(["--drain-timeout", "inf"]).drainTimeoutSeconds, 0)
        XCTAssertEqual(refusal(["-e"] + base + ["--drain-timeout", "-1"]), .numberOutOfRange(option: "--drain-timeout", value: "-1"))
        XCTAssertEqual(refusal(["-e"] + base + ["--drain-timeout", "nan"]), .invalidNumber(option: "--drain-timeout", value: "nan"))
        XCTAssertEqual(refusal(["-e"] + base + ["--drain-timeout", "5s"]), .invalidNumber(option: "--drain-timeout", value: "5s"))
    }

    func testSocketModeAndGroup() throws {
        func unixSource(_ extra: [String]) throws -> SpipedOptions {
            guard case .run(let o) = try SpipedOptions.parse(["-e", "-s", "/run/app/redis.sock", "-t", "[::1]:1", "-k", "k"] + extra) else {
                XCTFail("not a run")
                throw CommandLineError.usage("not a run")
            }
            return o
        }
        XCTAssertEqual(try unixSource(["--socket-mode", "660"]).socketMode, 0o660)
        XCTAssertEqual(try unixSource(["--socket-mode", "0660"]).socketMode, 0o660)
        XCTAssertEqual(try unixSource(["--socket-mode", "0"]).socketMode, 0)
        XCTAssertEqual(try unixSource(["--socket-mode", "0777"]).socketMode, 0o777)
        XCTAssertEqual(try unixSource(["--socket-group", "redis"]).socketGroup, "redis")
        XCTAssertEqual(try unixSource(["--socket-group=1001"]).socketGroup, "1001")
        for bad in ["", "680", "0x1b6", "rw-rw----", "00660", "-660", " 660"] {
            guard case .invalidValue(let option, let value, _)? = refusal(["-e", "-s", "/r.sock", "-t", "[::1]:1", "-k", "k", "--socket-mode", bad]) else {
                XCTFail("--socket-mode \(bad) was accepted")
                continue
            }
            XCTAssertEqual(option, "--socket-mode")
            XCTAssertEqual(value, bad)
        }
        XCTAssertEqual(refusal(["-e", "-s", "/r.sock", "-t", "[::1]:1", "-k", "k", "--socket-mode", "1777"]),
                       .invalidValue(option: "--socket-mode", value: "1777", reason: "only the permission bits (at most 777) apply to a socket"))
        XCTAssertEqual(refusal(["-e", "-s", "/r.sock", "-t", "[::1]:1", "-k", "k", "--socket-group", ""]),
                       .invalidValue(option: "--socket-group", value: "", reason: "it must not be empty"))
        // A TCP source has no socket file.
        XCTAssertEqual(refusal(["-e"] + base + ["--socket-mode", "660"]), .usage("--socket-mode needs a Unix-socket source (-s /path/to/socket)"))
        XCTAssertEqual(refusal(["-e"] + base + ["--socket-group", "redis"]), .usage("--socket-group needs a Unix-socket source (-s /path/to/socket)"))
    }

    func testConfigFile() throws {
        let o = try configuration(["--config", "/etc/spiped/spiped.conf"])
        XCTAssertEqual(o, SpipedConfigurationOptions(configPath: "/etc/spiped/spiped.conf", checkOnly: false, waitForDNS: false,
                                                     foreground: false, pidFilePath: nil, useSyslog: false, privileges: nil,
                                                     logLevel: nil, metricsAddress: nil, drainTimeoutSeconds: nil))
        let all = try configuration(["--config=/c", "--check", "-DF", "-p", "/run/s.pid", "--syslog", "-u", "spiped:spiped",
                                     "--log-level", "info", "--metrics", "[127.0.0.1]:9090", "--drain-timeout", "20"])
        XCTAssertEqual(all.configPath, "/c")
        XCTAssertTrue(all.checkOnly)
        XCTAssertTrue(all.waitForDNS)
        XCTAssertTrue(all.foreground)
        XCTAssertEqual(all.pidFilePath, "/run/s.pid")
        XCTAssertTrue(all.useSyslog)
        XCTAssertEqual(all.privileges, PrivilegeDropSpec(user: "spiped", group: "spiped"))
        XCTAssertEqual(all.logLevel, .info)
        XCTAssertEqual(all.metricsAddress, .ipv4("127.0.0.1", port: 9090))
        XCTAssertEqual(all.drainTimeoutSeconds, 20)
        // Process-wide values are still checked.
        XCTAssertEqual(refusal(["--config", "/c", "-u", "x:"]), .invalidPrivileges(value: "x:", .emptyGroupName("x:")))
        XCTAssertEqual(refusal(["--config", "/c", "extra"]), .usage("unexpected argument: extra"))
        XCTAssertEqual(refusal(["--config", "/c", "--config", "/d"]), .usage("option --config given more than once"))
        XCTAssertEqual(refusal(["--config"]), .missingArgument("--config"))
        XCTAssertEqual(refusal(["--config="]), .invalidValue(option: "--config", value: "", reason: "it must not be empty"))
    }

    func testConfigFileRefusesPerPipeOptions() {
        XCTAssertEqual(refusal(["--config", "/c", "-e"]), .usage("-e cannot be used with --config: set mode = in each pipe's section of the file"))
        XCTAssertEqual(refusal(["-d", "--config", "/c"]), .usage("-d cannot be used with --config: set mode = in each pipe's section of the file"))
        XCTAssertEqual(refusal(["--config", "/c", "-k", "/k"]), .usage("-k cannot be used with --config: set key = in each pipe's section of the file"))
        let perPipe: [[String]] = [["-s", "[::1]:1"], ["-t", "[::1]:1"], ["-k", "k"], ["-f"], ["-g"], ["-n", "5"], ["-o", "3"],
                                   ["-r", "5"], ["-R"], ["-j"], ["-b", "[::1]"], ["--pool", "2"], ["--pool-max-age", "3"],
                                   ["--socket-mode", "660"], ["--socket-group", "g"]]
        for words in perPipe {
            guard case .usage(let reason)? = refusal(["--config", "/c"] + words) else {
                XCTFail("--config with \(words) was accepted")
                continue
            }
            XCTAssertTrue(reason.hasPrefix("\(words[0]) cannot be used with --config"), reason)
        }
    }

    func testCheckNeedsConfig() {
        XCTAssertEqual(refusal(["--check"]), .usage("--check needs --config <file> (it checks a configuration file)"))
        XCTAssertEqual(refusal(["-e"] + base + ["--check"]), .usage("--check needs --config <file> (it checks a configuration file)"))
        XCTAssertEqual(refusal(["--config", "/c", "--check", "--check"]), .usage("option --check given more than once"))
        XCTAssertEqual(refusal(["--config", "/c", "--check=yes"]), .illegalOption("--check"))
    }

    func testLongOptionArgumentForms() throws {
        // `--option value`, `--option=value`, and a value that looks like an option.
        XCTAssertEqual(try options(["--drain-timeout", "7"]).drainTimeoutSeconds, 7)
        XCTAssertEqual(try options(["--drain-timeout=7"]).drainTimeoutSeconds, 7)
        XCTAssertEqual(try configuration(["--config", "-F"]).configPath, "-F")
        XCTAssertEqual(try configuration(["--config=a=b"]).configPath, "a=b")
        // The reference's long flag still refuses an attached value, and unknown long options stay unknown.
        XCTAssertEqual(refusal(["-e"] + base + ["--syslog=yes"]), .illegalOption("--syslog"))
        XCTAssertEqual(refusal(["-e"] + base + ["--pool-size", "1"]), .illegalOption("--pool-size"))
        XCTAssertEqual(refusal(["-e"] + base + ["--conf", "/c"]), .illegalOption("--conf"))
    }
}
