import Foundation
import SpipedCommandLine
import SpipedSystem
import XCTest

/// The configuration file (spiped.conf): the model it parses to, every diagnostic with its
/// `FILE:LINE: message`, includes, limits, `--check` and the command-line mapping.
final class ConfigurationFileTests: XCTestCase {
    let main = "/etc/spiped/spiped.conf"

    /// Parses `text` as the main file, with `files` as the rest of the tree.
    func parse(_ text: String, files: [String: String] = [:], limits: ConfigurationLimits = .standard) throws(ConfigurationErrors) -> ConfigurationFile {
        var tree = files
        tree[main] = text
        return try ConfigurationFileParser.parse(path: main, fileSystem: InMemoryConfigurationFileSystem(texts: tree), limits: limits)
    }

    /// The rendered diagnostics of parsing `text` (empty when it parses).
    func errors(_ text: String, files: [String: String] = [:], limits: ConfigurationLimits = .standard) -> [String] {
        do {
            _ = try parse(text, files: files, limits: limits)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    /// A minimal valid decrypt pipe named `name` listening on port `port`.
    func pipe(_ name: String, port: Int) -> String {
        "[\(name)]\nmode = decrypt\nsource = [127.0.0.1]:\(port)\ntarget = [127.0.0.1]:6379\nkey = /k\n"
    }

    func at(_ line: Int, _ file: String? = nil) -> SourceLocation { SourceLocation(file: file ?? main, line: line) }

    // MARK: - The model

    func testTheIssueExampleParsesToTheExpectedModel() throws {
        let text = """
            # global settings (all optional)
            pid-file = /run/spiped/spiped.pid
            user = spiped:spiped
            syslog = yes

            [redis]                           # one pipe; the name appears in logs (and metrics later)
            mode = decrypt                    # decrypt (-d) or encrypt (-e)
            source = [0.0.0.0]:16379
            target = [127.0.0.1]:6379
            key = /etc/spiped/redis.key
            max-connections = 500             # -n
            timeout = 5                       # -o

            [cluster]
            mode = decrypt
            source = [0.0.0.0]:16380
            route = /etc/spiped/node-a.key [10.0.0.11]:6379
            route = /etc/spiped/node-b.key [10.0.0.12]:6379

            """
        let configuration = try parse(text)
        XCTAssertEqual(configuration.globals, GlobalSettings(
            pidFile: "/run/spiped/spiped.pid", privileges: PrivilegeDropSpec(user: "spiped", group: "spiped"), syslog: true))
        XCTAssertEqual(configuration.sourceFiles, [main])
        XCTAssertEqual(configuration.pipes, [
            PipeDefinition(name: "redis", location: at(6), mode: .decrypt, source: .ipv4("0.0.0.0", port: 16379),
                           target: .ipv4("127.0.0.1", port: 6379),
                           keys: [KeyReference(path: "/etc/spiped/redis.key", location: at(10))], maxConnections: 500),
            PipeDefinition(name: "cluster", location: at(14), mode: .decrypt, source: .ipv4("0.0.0.0", port: 16380),
                           target: nil, keys: [],
                           routes: [RouteDefinition(keyPath: "/etc/spiped/node-a.key", target: .ipv4("10.0.0.11", port: 6379), location: at(17)),
                                    RouteDefinition(keyPath: "/etc/spiped/node-b.key", target: .ipv4("10.0.0.12", port: 6379), location: at(18))]),
        ])
    }

    func testDefaultsAreThoseOfTheCommandLine() throws {
        let p = try XCTUnwrap(parse("[a]\nmode = encrypt\nsource = /run/a.sock\ntarget = host.example:8025\nkey = a.key\n").pipes.first)
        XCTAssertEqual(p.mode, .encrypt)
        XCTAssertEqual(p.source, .unix(path: "/run/a.sock"))
        XCTAssertEqual(p.target, .hostName("host.example", port: 8025))
        XCTAssertEqual(p.keys.map(\.path), ["/etc/spiped/a.key"], "a relative key path is relative to the file's directory")
        XCTAssertFalse(p.fast)
        XCTAssertFalse(p.requireForwardSecrecy)
        XCTAssertEqual(p.maxConnections, 100)
        XCTAssertEqual(p.timeoutSeconds, 5)
        XCTAssertEqual(p.resolveIntervalSeconds, 60)
        XCTAssertTrue(p.keepAlive)
        XCTAssertNil(p.bindAddress)
        XCTAssertEqual(p.pool, 0)
        XCTAssertEqual(p.poolMaxAgeSeconds, 8)
        XCTAssertNil(p.socketMode)
        XCTAssertNil(p.socketGroup)
    }

    func testEveryOptionLandsInItsField() throws {
        let configuration = try parse("""
            pid-file = spiped.pid
            user = :nogroup
            syslog = off
            log-level = DEBUG
            metrics = [127.0.0.1]:9090
            drain-timeout = 30
            [e.1_x-y]
            mode = encrypt
            source = /run/e.sock
            target = [::1]:8025
            key = /k1
            fast = yes
            max-connections = 0x20
            timeout = 1.5
            resolve-interval = 7
            keepalive = no
            bind-address = [::1]
            pool = 4
            pool-max-age = 2.5
            socket-mode = 0660
            socket-group = nogroup
            [d]
            mode = decrypt
            source = [127.0.0.1]:8025
            target = localhost:6379
            key = /k1
            key = /k2
            require-forward-secrecy = true
            resolve = no
            max-connections = 18446744073709551615
            timeout = 0
            """)
        XCTAssertEqual(configuration.globals, GlobalSettings(
            pidFile: "/etc/spiped/spiped.pid", privileges: PrivilegeDropSpec(user: nil, group: "nogroup"), syslog: false,
            logLevel: .debug, metrics: .ipv4("127.0.0.1", port: 9090), drainTimeoutSeconds: 30))
        let e = try XCTUnwrap(configuration.pipe(named: "e.1_x-y"))
        XCTAssertEqual(e, PipeDefinition(
            name: "e.1_x-y", location: at(7), mode: .encrypt, source: .unix(path: "/run/e.sock"), target: .ipv6("::1", port: 8025),
            keys: [KeyReference(path: "/k1", location: at(11))], fast: true, maxConnections: 32, timeoutSeconds: 1.5,
            resolveIntervalSeconds: 7, keepAlive: false, bindAddress: .ipv6("::1", port: 0), pool: 4, poolMaxAgeSeconds: 2.5,
            socketMode: 0o660, socketGroup: "nogroup"))
        let d = try XCTUnwrap(configuration.pipe(named: "d"))
        XCTAssertEqual(d.keys.map(\.path), ["/k1", "/k2"], "several keys on a decrypt pipe, in order")
        XCTAssertTrue(d.requireForwardSecrecy)
        XCTAssertNil(d.resolveIntervalSeconds, "resolve = no is -R")
        XCTAssertEqual(d.maxConnections, 0, "as -n: past Int.max means no limit")
        XCTAssertEqual(d.timeoutSeconds, 5, "as -o: 0 means the default")
    }

    func testNumbersFollowTheCommandLineRules() throws {
        func value(_ line: String) throws -> PipeDefinition {
            try XCTUnwrap(parse(pipe("a", port: 1) + line + "\n").pipes.first)
        }
        XCTAssertEqual(try value("max-connections = 010").maxConnections, 8, "strtoull base 0")
        XCTAssertNil(try value("resolve-interval = inf").resolveIntervalSeconds, "infinite interval: never re-resolve")
        XCTAssertEqual(try value("resolve-interval = 0").resolveIntervalSeconds, 60, "as -r: 0 means the default")
        XCTAssertEqual(try value("timeout = inf").timeoutSeconds, .infinity)
        XCTAssertEqual(try value("timeout = 1e3").timeoutSeconds, 1000)
    }

    func testBooleansAcceptEveryDocumentedSpelling() throws {
        for (word, expected) in [("yes", true), ("no", false), ("true", true), ("false", false), ("on", true),
                                 ("off", false), ("1", true), ("0", false), ("Yes", true), ("OFF", false)] {
            XCTAssertEqual(try parse(pipe("a", port: 1) + "fast = \(word)\n").pipes.first?.fast, expected, word)
        }
    }

    func testCommentsBlankLinesAndWhitespace() throws {
        let text = "\u{FEFF}# whole-line comment\n   # indented comment\n\n\t\n[a]\t# after a section\r\n" +
            "  mode   =   decrypt  # trailing\r\n" +
            "source=[127.0.0.1]:1\ntarget = [127.0.0.1]:2\n" +
            "key = /keys/a#1   # the first # is part of the path, the second starts a comment\n"
        let p = try XCTUnwrap(parse(text).pipes.first)
        XCTAssertEqual(p.name, "a")
        XCTAssertEqual(p.location.line, 5)
        XCTAssertEqual(p.mode, .decrypt)
        XCTAssertEqual(p.keys, [KeyReference(path: "/keys/a#1", location: at(9))])
    }

    // MARK: - Every error kind

    func testLineLevelErrors() {
        XCTAssertEqual(errors("just some words\n" + pipe("a", port: 1)),
                       ["\(main):1: expected 'option = value', '[pipe-name]' or a comment, found 'just some words'"])
        XCTAssertEqual(errors("[unclosed\n" + pipe("a", port: 1)),
                       ["\(main):1: expected 'option = value', '[pipe-name]' or a comment, found '[unclosed'"])
        XCTAssertEqual(errors("= value\n" + pipe("a", port: 1)),
                       ["\(main):1: expected 'option = value', '[pipe-name]' or a comment, found '= value'"])
        XCTAssertEqual(errors("syslog = yes\u{1}\n" + pipe("a", port: 1)), ["\(main):1: line contains a control character"])
        XCTAssertEqual(errors(pipe("a b", port: 1)), ["\(main):1: invalid pipe name 'a b': use letters, digits, '-', '_' and '.'"])
        XCTAssertEqual(errors(pipe("", port: 1)), ["\(main):1: empty pipe name '[]'"])
        let long = String(repeating: "n", count: 129)
        XCTAssertEqual(errors(pipe(long, port: 1)), ["\(main):1: pipe name '\(long.prefix(80))...' is longer than 128 bytes"])
        XCTAssertEqual(try parse(pipe(String(repeating: "n", count: 128), port: 1)).pipes.count, 1)
    }

    func testInvalidUTF8IsReportedWithItsLine() {
        var bytes = Array(pipe("a", port: 1).utf8)
        bytes += [0x23, 0x20, 0xFF, 0x0A]  // "# \xff" on line 6: even comments must be UTF-8
        let fileSystem = InMemoryConfigurationFileSystem(files: [main: bytes])
        XCTAssertThrowsError(try ConfigurationFileParser.parse(path: main, fileSystem: fileSystem)) { error in
            XCTAssertEqual((error as? ConfigurationErrors)?.rendered, "\(main):6: line is not valid UTF-8\n")
        }
    }

    func testUnknownOptionsSuggestTheNearestName() {
        XCTAssertEqual(errors(pipe("a", port: 1) + "tiemout = 5\nmax_connections = 5\nfrobnicate = 1\nKey = /k2\n"), [
            "\(main):6: unknown option 'tiemout' (did you mean 'timeout'?)",
            "\(main):7: unknown option 'max_connections' (did you mean 'max-connections'?)",
            "\(main):8: unknown option 'frobnicate'",
            "\(main):9: unknown option 'Key' (did you mean 'key'?)",
        ])
        XCTAssertEqual(errors("pidfile = /x\n" + pipe("a", port: 1)), ["\(main):1: unknown option 'pidfile' (did you mean 'pid-file'?)"])
    }

    func testOptionsInTheWrongPart() {
        XCTAssertEqual(errors("mode = decrypt\n" + pipe("a", port: 1) + "syslog = yes\ninclude = /x/*.conf\n"), [
            "\(main):1: 'mode' is a pipe option; it must be inside a [pipe-name] section",
            "\(main):7: 'syslog' is a global option; it must come before the first section, not in [a]",
            "\(main):8: 'include' is a global option; it must come before the first section, not in [a]",
        ])
    }

    func testValuesThatDoNotParse() {
        let text = """
            syslog = maybe
            log-level = loud
            user = spiped:
            metrics = localhost
            drain-timeout = -1
            [a]
            mode = both
            source = [127.0.0.1]:99999
            target = [1.2.3]:80
            key = -
            fast = sometimes
            max-connections = many
            timeout = 1e400
            resolve-interval = soon
            bind-address = [::1]:x
            socket-mode = 0999
            keepalive =
            """
        XCTAssertEqual(errors(text), [
            "\(main):1: invalid value for 'syslog': 'maybe' (use yes or no)",
            "\(main):2: invalid value for 'log-level': 'loud' (use error, warning, info, debug)",
            "\(main):3: invalid 'user' 'spiped:': Empty group name: \"spiped:\"",
            "\(main):4: invalid address for 'metrics': 'localhost': Address must contain port number: localhost",
            "\(main):5: value of 'drain-timeout' out of range (0 to inf): '-1'",
            "\(main):7: invalid value for 'mode': 'both' (use encrypt, decrypt)",
            "\(main):8: invalid address for 'source': '[127.0.0.1]:99999': Invalid port number: 99999",
            "\(main):9: invalid address for 'target': '[1.2.3]:80': Error parsing IP address: 1.2.3",
            "\(main):10: 'key' cannot read the key from standard input ('-') in a configuration file",
            "\(main):11: invalid value for 'fast': 'sometimes' (use yes or no)",
            "\(main):12: invalid number for 'max-connections': 'many'",
            "\(main):13: value of 'timeout' out of range (0 to inf): '1e400'",
            "\(main):14: invalid number for 'resolve-interval': 'soon'",
            "\(main):15: invalid address for 'bind-address': '[::1]:x': Invalid port number: x",
            "\(main):16: invalid 'socket-mode' '0999': use an octal mode from 0 to 777, such as 0660",
            "\(main):17: option 'keepalive' needs a value",
        ], "an option whose value was refused does not also count as missing")
    }

    func testMoreValueErrors() {
        XCTAssertEqual(errors(pipe("a", port: 1).replacingOccurrences(of: "mode = decrypt", with: "mode = encrypt") +
                              "pool = 1001\npool-max-age = 0\ntimeout = nan\n"), [
            "\(main):6: value of 'pool' out of range (0 to 1000): '1001'",
            "\(main):7: 'pool-max-age' must be a positive number of seconds: '0'",
            "\(main):8: invalid number for 'timeout': 'nan'",
        ])
        XCTAssertEqual(errors("[a]\nmode = decrypt\nsource = /a.sock\nroute = /k\nroute = /k2 nowhere\n"), [
            "\(main):4: invalid 'route' '/k': use 'route = KEYFILE ADDRESS'",
            "\(main):5: invalid address for 'route': 'nowhere': Address must contain port number: nowhere",
        ])
        // Found by the config-parse fuzzer: `[` without `]` was taken as a host name, whose text
        // form (`[:0`) does not parse back.
        XCTAssertEqual(errors(pipe("a", port: 1) + "bind-address = [\nbind-address = [1.2.3.4\n"), [
            "\(main):6: invalid address for 'bind-address': '[': Error parsing IP address: [",
            "\(main):7: option 'bind-address' given more than once (first at line 6)",
        ])
        XCTAssertEqual(errors(pipe("a", port: 1) + "bind-address = [1.2.3.4\n"),
                       ["\(main):6: invalid address for 'bind-address': '[1.2.3.4': Error parsing IP address: [1.2.3.4"])
    }

    func testMissingRequiredOptions() {
        XCTAssertEqual(errors("[a]\nfast = yes\n"), [
            "\(main):1: pipe 'a' has no 'mode' (add 'mode = encrypt' or 'mode = decrypt')",
            "\(main):1: pipe 'a' has no 'source' (add 'source = ADDRESS')",
        ])
        XCTAssertEqual(errors("[a]\nmode = decrypt\nsource = /a.sock\n"), [
            "\(main):1: pipe 'a' has no 'target' (add 'target = ADDRESS', or 'route = KEYFILE ADDRESS' lines)",
            "\(main):1: pipe 'a' has no 'key' (add 'key = FILE')",
        ])
        XCTAssertEqual(errors("[a]\nmode = encrypt\nsource = /a.sock\n"), [
            "\(main):1: pipe 'a' has no 'target' (add 'target = ADDRESS')",
            "\(main):1: pipe 'a' has no 'key' (add 'key = FILE')",
        ])
        XCTAssertEqual(errors("syslog = yes\n"), ["\(main): no pipes defined (add a [pipe-name] section)"])
        XCTAssertEqual(errors(""), ["\(main): no pipes defined (add a [pipe-name] section)"])
    }

    func testDuplicatePipeNamesGiveBothLocations() {
        XCTAssertEqual(errors(pipe("a", port: 1) + pipe("a", port: 2)), ["\(main):6: duplicate pipe name 'a' (first defined at \(main):1)"])
    }

    func testTwoPipesOnOneSourceGiveBothLocations() {
        XCTAssertEqual(errors(pipe("a", port: 1) + pipe("b", port: 1)),
                       ["\(main):8: pipe 'b' listens on [127.0.0.1]:1, as pipe 'a' does (at \(main):3)"])
        // After normalisation: the same IPv6 address written twice, the same path with extra slashes.
        let v6 = "[a]\nmode = decrypt\nsource = [::1]:80\ntarget = [::1]:81\nkey = /k\n" +
            "[b]\nmode = decrypt\nsource = [0:0::0:1]:80\ntarget = [::1]:81\nkey = /k\n"
        XCTAssertEqual(errors(v6), ["\(main):8: pipe 'b' listens on [0:0::0:1]:80, as pipe 'a' does (at \(main):3)"])
        let unix = "[a]\nmode = decrypt\nsource = /run/a.sock\ntarget = [::1]:81\nkey = /k\n" +
            "[b]\nmode = encrypt\nsource = //run/./a.sock\ntarget = [::1]:81\nkey = /k\n"
        XCTAssertEqual(errors(unix), ["\(main):8: pipe 'b' listens on //run/./a.sock, as pipe 'a' does (at \(main):3)"])
        XCTAssertEqual(errors(pipe("a", port: 1) + pipe("b", port: 2)), [], "different ports are different sources")
    }

    func testRoutesKeysAndModeRules() {
        let encrypt = "[e]\nmode = encrypt\nsource = /e.sock\ntarget = [::1]:1\n"
        XCTAssertEqual(errors(encrypt + "key = /k\nroute = /k2 [::1]:2\n"),
                       ["\(main):6: 'route' is only allowed in a decrypt pipe, and [e] has 'mode = encrypt'"])
        XCTAssertEqual(errors(encrypt + "key = /k\nkey = /k2\n"),
                       ["\(main):6: an encrypt pipe takes exactly one 'key'; [e] has another at line 5"])
        let routed = "[d]\nmode = decrypt\nsource = /d.sock\nroute = /k1 [::1]:1\n"
        XCTAssertEqual(errors(routed + "target = [::1]:2\nkey = /k2\n"), [
            "\(main):4: 'route' cannot be combined with 'target' (line 5) in [d]: a routed pipe takes its keys and targets from its routes",
            "\(main):4: 'route' cannot be combined with 'key' (line 6) in [d]: a routed pipe takes its keys and targets from its routes",
        ])
        XCTAssertEqual(errors(pipe("d", port: 1) + "pool = 2\npool-max-age = 3\n"), [
            "\(main):6: 'pool' is only allowed in an encrypt pipe, and [d] has 'mode = decrypt'",
            "\(main):7: 'pool-max-age' is only allowed in an encrypt pipe, and [d] has 'mode = decrypt'",
        ])
        XCTAssertEqual(errors(pipe("d", port: 1) + "socket-mode = 600\nsocket-group = staff\n"), [
            "\(main):6: 'socket-mode' only applies to a Unix-socket source, not [127.0.0.1]:1",
            "\(main):7: 'socket-group' only applies to a Unix-socket source, not [127.0.0.1]:1",
        ])
        XCTAssertEqual(errors(pipe("d", port: 1) + "require-forward-secrecy = yes\nfast = yes\n"),
                       ["\(main):7: 'fast' and 'require-forward-secrecy' cannot both be yes in [d]"])
        XCTAssertEqual(errors(pipe("d", port: 1) + "resolve-interval = 30\nresolve = no\n"),
                       ["\(main):7: 'resolve = no' cannot be combined with 'resolve-interval' (line 6) in [d]"])
        XCTAssertEqual(errors(pipe("d", port: 1) + "key = /etc/spiped/../../k\nkey = /k\n"),
                       ["\(main):7: key file '/k' listed more than once (first at line 5)"])
        XCTAssertEqual(errors(routed + "route = /k1 [::1]:2\n"), ["\(main):5: key file '/k1' listed more than once (first at line 4)"])
    }

    func testRepeatedSingleValuedOptions() {
        XCTAssertEqual(errors("syslog = yes\nsyslog = no\n" + pipe("a", port: 1) + "target = [::1]:1\nmode = encrypt\n"), [
            "\(main):2: option 'syslog' given more than once (first at line 1)",
            "\(main):8: option 'target' given more than once (first at line 6)",
            "\(main):9: option 'mode' given more than once (first at line 4)",
        ])
    }

    func testAllErrorsAreCollectedInFileAndLineOrder() {
        let included = "/etc/spiped/conf.d/b.conf"
        let text = "bogus = 1\ninclude = conf.d/*.conf\n[a]\nmode = decrypt\nsource = [127.0.0.1]:1\nkey = /k\ntimeout = x\n"
        let diagnostics = errors(text, files: [included: "[b]\nmode = encrypt\nsource = [127.0.0.1]:1\ntarget = x\n"])
        XCTAssertEqual(diagnostics, [
            "\(main):1: unknown option 'bogus'",
            "\(main):3: pipe 'a' has no 'target' (add 'target = ADDRESS', or 'route = KEYFILE ADDRESS' lines)",
            "\(main):5: pipe 'a' listens on [127.0.0.1]:1, as pipe 'b' does (at \(included):3)",
            "\(main):7: invalid number for 'timeout': 'x'",
            "\(included):1: pipe 'b' has no 'key' (add 'key = FILE')",
            "\(included):4: invalid address for 'target': 'x': Address must contain port number: x",
        ])
    }

    func testDiagnosticsStopAtTheLimit() {
        let limits = ConfigurationLimits(maximumFileByteCount: 1 << 20, maximumTotalByteCount: 1 << 20, maximumFileCount: 10,
                                         maximumPipeCount: 10, maximumIncludeDepth: 8, maximumDiagnosticCount: 3)
        XCTAssertEqual(errors(String(repeating: "x\n", count: 10), limits: limits), [
            "\(main):1: expected 'option = value', '[pipe-name]' or a comment, found 'x'",
            "\(main):2: expected 'option = value', '[pipe-name]' or a comment, found 'x'",
            "\(main):3: expected 'option = value', '[pipe-name]' or a comment, found 'x'",
            "\(main):4: more than 3 errors; stopping",
        ])
    }

    func testSizeAndCountLimits() {
        let limits = ConfigurationLimits(maximumFileByteCount: 200, maximumTotalByteCount: 300, maximumFileCount: 3,
                                         maximumPipeCount: 2, maximumIncludeDepth: 8, maximumDiagnosticCount: 100)
        var pipeLimit = ConfigurationLimits.standard
        pipeLimit.maximumPipeCount = 2
        XCTAssertEqual(errors(pipe("a", port: 1) + pipe("b", port: 2) + pipe("c", port: 3), limits: pipeLimit),
                       ["\(main):11: more than 2 pipes; stopping"])
        XCTAssertEqual(errors("#" + String(repeating: "x", count: 200) + "\n", limits: limits),
                       ["\(main): cannot read '\(main)': file is larger than 200 bytes"])
        let big = "# " + String(repeating: "x", count: 150) + "\n"
        XCTAssertEqual(errors("include = d/*\n", files: ["/etc/spiped/d/1": big, "/etc/spiped/d/2": big], limits: limits),
                       ["\(main):1: configuration files larger than 300 bytes in total; stopping"])
        XCTAssertEqual(errors("include = d/*\n", files: ["/etc/spiped/d/1": "", "/etc/spiped/d/2": "", "/etc/spiped/d/3": ""], limits: limits),
                       ["\(main):1: more than 3 configuration files; stopping"])
        XCTAssertEqual(ConfigurationLimits.standard.maximumFileByteCount, 1 << 20)
        XCTAssertEqual(ConfigurationLimits.standard.maximumPipeCount, 10_000)
    }

    // MARK: - Includes

    func testIncludeGlobOrderRelativePathsAndNesting() throws {
        let configuration = try parse("include = conf.d/*.conf\ninclude = /opt/extra.conf\n" + pipe("main", port: 1), files: [
            "/etc/spiped/conf.d/20-b.conf": pipe("b", port: 3),
            "/etc/spiped/conf.d/10-a.conf": "include = nested/*.conf\n" + pipe("a", port: 2).replacingOccurrences(of: "/k", with: "a.key"),
            "/etc/spiped/conf.d/nested/x.conf": pipe("x", port: 4),
            "/etc/spiped/conf.d/README": "not a configuration file",
            "/etc/spiped/conf.d/.hidden.conf": "not read: * does not match a leading dot",
            "/etc/spiped/conf.d/30-c.conf.disabled": "not read",
            "/opt/extra.conf": pipe("extra", port: 5),
        ])
        XCTAssertEqual(configuration.pipes.map(\.name), ["x", "a", "b", "extra", "main"])
        XCTAssertEqual(configuration.pipe(named: "a")?.keys.map(\.path), ["/etc/spiped/conf.d/a.key"])
        XCTAssertEqual(configuration.pipe(named: "x")?.location, at(1, "/etc/spiped/conf.d/nested/x.conf"))
        XCTAssertEqual(configuration.sourceFiles, [main, "/etc/spiped/conf.d/10-a.conf", "/etc/spiped/conf.d/nested/x.conf",
                                                   "/etc/spiped/conf.d/20-b.conf", "/opt/extra.conf"])
    }

    func testAPatternThatMatchesNothingIsNotAnError() throws {
        XCTAssertEqual(try parse("include = conf.d/*.conf\n" + pipe("a", port: 1), files: ["/etc/spiped/conf.d/x.txt": "junk"]).pipes.count, 1)
        XCTAssertEqual(try parse("include = missing.d/*.conf\n" + pipe("a", port: 1)).pipes.count, 1)
    }

    func testIncludeErrors() {
        XCTAssertEqual(errors("include = missing.conf\n" + pipe("a", port: 1)),
                       ["\(main):1: cannot read '/etc/spiped/missing.conf': No such file or directory"])
        XCTAssertEqual(errors("include = */x.conf\n" + pipe("a", port: 1)),
                       ["\(main):1: include pattern '/etc/spiped/*/x.conf' may only have '*' in its last path component"])
        XCTAssertEqual(errors("include = conf.d\n" + pipe("a", port: 1), files: ["/etc/spiped/conf.d/x.conf": ""]),
                       ["\(main):1: cannot read '/etc/spiped/conf.d': Is a directory"])
        XCTAssertEqual(errors("include = spiped.conf/*\n" + pipe("a", port: 1)),
                       ["\(main):1: cannot list directory '/etc/spiped/spiped.conf': Not a directory"])
        XCTAssertEqual(errors("include =\n" + pipe("a", port: 1)), ["\(main):1: option 'include' needs a value"])
        XCTAssertEqual(errors(pipe("a", port: 1), files: [:]).count, 0)
        // An included file may hold pipes and includes, not globals.
        XCTAssertEqual(errors("include = b.conf\n", files: ["/etc/spiped/b.conf": "syslog = yes\n" + pipe("b", port: 1)]),
                       ["/etc/spiped/b.conf:1: 'syslog' is a global option; it may only be set in the main configuration file"])
    }

    func testIncludeCycleIsAnError() {
        XCTAssertEqual(errors("include = a.conf\n", files: ["/etc/spiped/a.conf": "include = b.conf\n" + pipe("a", port: 1),
                                                            "/etc/spiped/b.conf": "include = /etc/spiped/spiped.conf\n"]),
                       ["/etc/spiped/b.conf:1: include cycle: \(main) -> /etc/spiped/a.conf -> /etc/spiped/b.conf -> \(main)"])
        XCTAssertEqual(errors("include = ./*.conf\n" + pipe("a", port: 1)),
                       ["\(main):1: include cycle: \(main) -> \(main)"], "a pattern matching the including file itself")
    }

    func testIncludeDepthIsLimited() {
        var files: [String: String] = [:]
        for depth in 1...9 { files["/etc/spiped/\(depth).conf"] = depth < 9 ? "include = \(depth + 1).conf\n" : pipe("deep", port: 1) }
        XCTAssertEqual(errors("include = 1.conf\n" + pipe("a", port: 2), files: files),
                       ["/etc/spiped/8.conf:1: includes nested more than 8 deep"])
        files["/etc/spiped/8.conf"] = pipe("deep", port: 1)
        XCTAssertEqual(errors("include = 1.conf\n" + pipe("a", port: 2), files: files), [], "depth 8 is allowed")
    }

    func testIncludesOnARealDirectory() throws {
        let directory = NSTemporaryDirectory() + "spiped-config-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory + "/conf.d", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try (pipe("b", port: 2)).write(toFile: directory + "/conf.d/b.conf", atomically: false, encoding: .utf8)
        try (pipe("a", port: 1)).write(toFile: directory + "/conf.d/a.conf", atomically: false, encoding: .utf8)
        try "include = conf.d/*.conf\ninclude = empty.d/*.conf\n".write(toFile: directory + "/spiped.conf", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory + "/empty.d", withIntermediateDirectories: true)
        let configuration = try ConfigurationFileParser.parse(path: directory + "/spiped.conf")
        XCTAssertEqual(configuration.pipes.map(\.name), ["a", "b"])
        XCTAssertEqual(configuration.pipes.map(\.location.file), [directory + "/conf.d/a.conf", directory + "/conf.d/b.conf"])
        // A symbolic link back to the main file is a cycle (found through realpath).
        try FileManager.default.createSymbolicLink(atPath: directory + "/conf.d/loop.conf", withDestinationPath: "../spiped.conf")
        XCTAssertThrowsError(try ConfigurationFileParser.parse(path: directory + "/spiped.conf")) { error in
            XCTAssertEqual((error as? ConfigurationErrors)?.rendered,
                           "\(directory)/spiped.conf:1: include cycle: \(directory)/spiped.conf -> \(directory)/conf.d/loop.conf\n")
        }
        XCTAssertThrowsError(try ConfigurationFileParser.parse(path: directory + "/nonexistent.conf")) { error in
            XCTAssertEqual((error as? ConfigurationErrors)?.rendered,
                           "\(directory)/nonexistent.conf: cannot read '\(directory)/nonexistent.conf': No such file or directory\n")
        }
    }

    // MARK: - Check

    func testCheckLoadsEveryKeyAndReportsItsLine() throws {
        let directory = NSTemporaryDirectory() + "spiped-config-check-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let good = directory + "/good.key", loose = directory + "/loose.key"
        XCTAssertTrue(FileManager.default.createFile(atPath: good, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o600]))
        XCTAssertTrue(FileManager.default.createFile(atPath: loose, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o644]))
        let path = directory + "/spiped.conf"
        try """
            [a]
            mode = decrypt
            source = [127.0.0.1]:1
            target = [127.0.0.1]:2
            key = good.key
            key = missing.key
            [b]
            mode = decrypt
            source = [127.0.0.1]:3
            route = loose.key [127.0.0.1]:4
            route = missing.key [127.0.0.1]:5

            """.write(toFile: path, atomically: false, encoding: .utf8)
        let report = ConfigurationFileParser.check(path: path)
        XCTAssertFalse(report.passed)
        XCTAssertNil(report.configuration)
        XCTAssertEqual(report.diagnostics.map(\.description), [
            "\(path):6: cannot open key file '\(directory)/missing.key': No such file or directory",
            "\(path):10: warning: key file \(loose) can be read or written by its group and others (mode 644); fix: chmod 600 \(loose)",
            "\(path):11: cannot open key file '\(directory)/missing.key': No such file or directory",
        ])
        // The same loading for the engine, on a parsed configuration.
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/missing.key", contents: Data([10]), attributes: [.posixPermissions: 0o600]))
        let configuration = try ConfigurationFileParser.parse(path: path)
        let keys = configuration.loadKeys()
        // Built outside the assertion's autoclosure: with the multi-stream SHA-256 code merged,
        // Swift 6.3.1's optimizer (release, -enable-testing) read this literal's captured strings
        // at a wrong offset inside XCTAssertEqual's autoclosure (a crash in String hashing, no
        // invalid write under valgrind); the values compared are the same.
        let expectedPaths: Set<String> = [good, loose, directory + "/missing.key"]
        let loadedPaths = Set(keys.keys.keys)
        XCTAssertEqual(loadedPaths, expectedPaths)
        XCTAssertFalse(keys.hasErrors)
        XCTAssertEqual(keys.diagnostics.map(\.description), [
            "\(path):6: warning: key file '\(directory)/missing.key': Key file is only 1 bytes long; it should hold at least 256 bits of entropy",
            "\(path):10: warning: key file \(loose) can be read or written by its group and others (mode 644); fix: chmod 600 \(loose)",
        ])
        let passing = ConfigurationFileParser.check(path: path)
        XCTAssertTrue(passing.passed, "warnings do not fail the check")
        XCTAssertEqual(passing.configuration, configuration)
    }

    func testCheckReportsKeysOfBrokenSectionsAndUnknownAccounts() {
        let fileSystem = InMemoryConfigurationFileSystem(texts: [main: "user = ghost:nogroup\n[a]\nmode = decrypt\nsource = /a.sock\n" +
                                                                 "key = /nonexistent/k\nsocket-group = phantoms\n"])
        let accounts = ConfigurationAccountLookup(userExists: { $0 != "ghost" }, groupExists: { $0 == "nogroup" })
        let report = ConfigurationFileParser.check(path: main, fileSystem: fileSystem, accounts: accounts)
        XCTAssertEqual(report.rendered, """
            \(main):1: no such user: 'ghost'
            \(main):2: pipe 'a' has no 'target' (add 'target = ADDRESS', or 'route = KEYFILE ADDRESS' lines)
            \(main):5: cannot open key file '/nonexistent/k': No such file or directory
            \(main):6: no such group: 'phantoms'

            """)
        XCTAssertTrue(ConfigurationAccountLookup.system.userExists("root"))
        XCTAssertTrue(ConfigurationAccountLookup.system.groupExists("0"))
        XCTAssertFalse(ConfigurationAccountLookup.system.userExists("no-such-user-xyz"))
    }

    // MARK: - Other entry points

    func testACommandLineBecomesAOnePipeConfiguration() throws {
        guard case .run(let options) = try SpipedOptions.parse(
            ["-e", "-s", "[127.0.0.1]:8025", "-t", "example.com:8026", "-k", "key", "-n", "7", "-R", "-j", "-f", "-u", "nobody", "--syslog"]) else {
            return XCTFail("not a run")
        }
        let configuration = ConfigurationFile(commandLine: options)
        let origin = SourceLocation(file: "<command line>", line: 0)
        XCTAssertEqual(configuration, ConfigurationFile(
            globals: GlobalSettings(pidFile: "[127.0.0.1]:8025.pid", privileges: PrivilegeDropSpec(user: "nobody", group: nil), syslog: true),
            pipes: [PipeDefinition(name: "[127.0.0.1]:8025", location: origin, mode: .encrypt, source: .ipv4("127.0.0.1", port: 8025),
                                   target: .hostName("example.com", port: 8026), keys: [KeyReference(path: "key", location: origin)],
                                   fast: true, maxConnections: 7, resolveIntervalSeconds: nil, keepAlive: false)]))
    }

    func testRenderedTextParsesBackToTheSameSettings() throws {
        let configuration = try parse("""
            pid-file = /run/x.pid
            user = a:b:c
            syslog = yes
            log-level = info
            metrics = [::1]:9090
            drain-timeout = inf
            [e]
            mode = encrypt
            source = /run/e.sock
            target = example.com:http
            key = rel/k
            resolve-interval = 1e-3
            pool = 3
            socket-mode = 7
            socket-group = g
            bind-address = 10.0.0.1
            [d]
            mode = decrypt
            source = [0.0.0.0]:1
            route = /k with spaces [::1]:2
            resolve = no
            """)
        let again = try ConfigurationFileParser.parse(text: configuration.renderedText, path: "/elsewhere/x.conf")
        XCTAssertEqual(again.globals, configuration.globals)
        XCTAssertEqual(again.pipes.count, 2)
        for (left, right) in zip(configuration.pipes, again.pipes) {
            XCTAssertTrue(left.hasSameSettings(as: right), "\(left) vs \(right)")
            XCTAssertNotEqual(left, right, "the locations differ")
        }
        XCTAssertEqual(configuration.pipe(named: "d")?.routes.first?.keyPath, "/k with spaces")
        XCTAssertEqual(configuration.pipe(named: "e")?.target, .hostName("example.com", port: 80))
    }

    func testSettingsComparisonIgnoresLocations() throws {
        let first = try XCTUnwrap(parse(pipe("a", port: 1)).pipes.first)
        let moved = try XCTUnwrap(parse("\n\n" + pipe("a", port: 1)).pipes.first)
        let changed = try XCTUnwrap(parse(pipe("a", port: 1) + "timeout = 6\n").pipes.first)
        XCTAssertTrue(first.hasSameSettings(as: moved))
        XCTAssertNotEqual(first, moved)
        XCTAssertFalse(first.hasSameSettings(as: changed))
    }
}
