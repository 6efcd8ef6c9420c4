// Fuzz target: the configuration-file parser (spiped.conf) on a main file and up to five
// included files, all held in memory, either as raw bytes or assembled from real option lines
// with hostile values. Anyone who can write an included file can feed this parser.
import FuzzSupport
import SpipedCommandLine
import SpipedProtocol
import SpipedSystem

/// Where the main file lives.
private let mainPath = "/etc/spiped/spiped.conf"
/// Where the further files of an input go (the token table's include lines reach them all).
private let otherPaths = ["/etc/spiped/conf.d/10.conf", "/etc/spiped/conf.d/20.conf", "/etc/spiped/inc.conf",
                          "/etc/spiped/conf.d/sub/x", "/etc/spiped/other.conf"]

/// Lines of the file format, valid and not: sections, every option with good and bad values,
/// includes of every kind, comments.
private let lineTable = [
    "[a]", "[b]", "[c.d-e_f]", "[a b]", "[]", "[x", "  [a]  # c",
    "mode = encrypt", "mode = decrypt", "mode = both", "mode=decrypt#x",
    "source = [127.0.0.1]:8001", "source = [127.0.0.1]:8002", "source = /run/a.sock", "source = //run/./a.sock",
    "source = [::1]:8001", "source = [0:0::1]:8001", "source = localhost:8001", "source = x",
    "target = [127.0.0.1]:6379", "target = host.example:80", "target =", "target = /run/t.sock",
    "key = /k1", "key = k2", "key = -", "key = /k1 # c", "key = ../k3",
    "route = /k1 [10.0.0.1]:1", "route = k3 [10.0.0.2]:2", "route = /k1", "route = /a b c [::1]:3",
    "fast = yes", "fast = no", "require-forward-secrecy = yes", "require-forward-secrecy = maybe",
    "max-connections = 0", "max-connections = 0x10", "max-connections = -1", "max-connections = 99999999999999999999",
    "timeout = 0", "timeout = inf", "timeout = nan", "timeout = 1e400", "timeout = 2.5", "timeout = -0",
    "resolve-interval = 0", "resolve-interval = inf", "resolve-interval = 7", "resolve = no", "resolve = yes",
    "keepalive = off", "bind-address = [::1]", "bind-address = 10.0.0.1", "bind-address = [::1]:x",
    "pool = 4", "pool = 1001", "pool-max-age = 0", "pool-max-age = 3",
    "socket-mode = 0660", "socket-mode = 8", "socket-group = staff",
    "include = conf.d/*.conf", "include = inc.conf", "include = /etc/spiped/conf.d/sub/*", "include = *.conf",
    "include = missing.conf", "include = */x", "include = conf.d", "include = ./spiped.conf", "include = *",
    "include = conf.d/*", "include = other.conf", "include = /etc/spiped/conf.d/*0.conf",
    "pid-file = spiped.pid", "user = spiped:spiped", "user = :", "syslog = yes", "log-level = debug",
    "log-level = loud", "metrics = [127.0.0.1]:9090", "drain-timeout = 30", "drain-timeout = nan",
    "# comment", "", "\t", "tiemout = 5", "garbage", "= x", "\u{FEFF}[a]", "key = /k\r",
]

/// Small limits, so one input stays fast; the limits themselves are exercised too.
private let limits = ConfigurationLimits(maximumFileByteCount: 1 << 16, maximumTotalByteCount: 1 << 17,
                                         maximumFileCount: 24, maximumPipeCount: 40, maximumIncludeDepth: 8,
                                         maximumDiagnosticCount: 60)

/// Input layout: 1 byte of mode. Bit 0 set: the rest is raw, files separated by NUL bytes (the
/// first is the main file). Clear: each byte picks a line of `lineTable` (< 0xF0), starts the
/// next file (0xF0...0xFE), or takes the next ≤ 31 bytes as a raw line (0xFF).
private func files(_ input: inout FuzzedInput) -> [String: [UInt8]] {
    var contents: [[UInt8]] = [[]]
    if input.byte() & 1 == 1 {
        contents = input.rest().split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
    } else {
        while !input.isExhausted {
            let pick = input.byte()
            if pick == 0xFF {
                contents[contents.count - 1] += input.take(Int(input.byte() & 31)) + [0x0A]
            } else if pick >= 0xF0 {
                contents.append([])
            } else {
                contents[contents.count - 1] += Array(lineTable[Int(pick) % lineTable.count].utf8) + [0x0A]
            }
        }
    }
    var tree = [mainPath: contents[0]]
    for (path, bytes) in zip(otherPaths, contents.dropFirst()) { tree[path] = bytes }
    return tree
}

/// The line count the parser uses: LF-terminated lines, plus an unterminated last one (an
/// empty file has one empty line).
private func lineCount(_ bytes: [UInt8]) -> Int {
    let newlines = bytes.count(where: { $0 == 0x0A })
    return bytes.last == 0x0A ? newlines : newlines + 1
}

/// Checks that a location names a file of the tree and a line within it.
private func checkLocation(_ location: SourceLocation, _ tree: [String: [UInt8]], what: String) {
    guard let bytes = tree[location.file] else { fuzzFailure("\(what) in unknown file \(location)") }
    guard location.line >= 0, location.line <= lineCount(bytes) else {
        fuzzFailure("\(what) at line \(location.line) of a \(lineCount(bytes))-line file")
    }
    if location.line == 0 && location.file != mainPath { fuzzFailure("\(what): line 0 outside the main file: \(location)") }
}

/// Checks the rules every accepted configuration obeys.
private func checkAccepted(_ configuration: ConfigurationFile, _ tree: [String: [UInt8]]) {
    if configuration.sourceFiles.first != mainPath { fuzzFailure("source files \(configuration.sourceFiles)") }
    if configuration.pipes.isEmpty || configuration.pipes.count > limits.maximumPipeCount {
        fuzzFailure("\(configuration.pipes.count) pipes accepted")
    }
    var names: Set<String> = []
    var sources: Set<String> = []
    for pipe in configuration.pipes {
        checkLocation(pipe.location, tree, what: "pipe \(pipe.name)")
        if !configuration.sourceFiles.contains(pipe.location.file) { fuzzFailure("pipe from a file not read: \(pipe.location)") }
        if !names.insert(pipe.name).inserted { fuzzFailure("two pipes named \(pipe.name)") }
        if !sources.insert(pipe.source.description).inserted { fuzzFailure("two pipes on \(pipe.source)") }
        if pipe.name.isEmpty || !pipe.name.utf8.allSatisfy({ $0 < 0x80 && ($0 == 0x2D || $0 == 0x2E || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)) }) {
            fuzzFailure("pipe name \(pipe.name) accepted")
        }
        switch pipe.mode {
        case .encrypt:
            if pipe.keys.count != 1 || !pipe.routes.isEmpty || pipe.target == nil { fuzzFailure("encrypt pipe \(pipe)") }
        case .decrypt:
            let plain = !pipe.keys.isEmpty && pipe.routes.isEmpty && pipe.target != nil
            let routed = pipe.keys.isEmpty && !pipe.routes.isEmpty && pipe.target == nil
            if !(plain || routed) || pipe.pool != 0 { fuzzFailure("decrypt pipe \(pipe)") }
        }
        if pipe.fast && pipe.requireForwardSecrecy { fuzzFailure("fast with forward secrecy: \(pipe.name)") }
        if !(pipe.timeoutSeconds > 0) || !(pipe.poolMaxAgeSeconds > 0) { fuzzFailure("durations of \(pipe)") }
        if let interval = pipe.resolveIntervalSeconds, !(interval.isFinite && interval > 0) { fuzzFailure("interval \(interval)") }
        if pipe.maxConnections < 0 || pipe.pool < 0 || pipe.pool > PipeDefinition.maximumPool { fuzzFailure("counts of \(pipe)") }
        if let mode = pipe.socketMode, mode > 0o777 { fuzzFailure("socket mode \(mode)") }
        if pipe.socketMode != nil || pipe.socketGroup != nil {
            if case .unix = pipe.source {} else { fuzzFailure("socket settings on \(pipe.source)") }
        }
        for key in pipe.keyReferences {
            if key.path.isEmpty || key.path == "-" { fuzzFailure("key path '\(key.path)'") }
            checkLocation(key.location, tree, what: "key line")
            if key.location.file != pipe.location.file || key.location.line <= pipe.location.line {
                fuzzFailure("key line \(key.location) outside its section \(pipe.location)")
            }
        }
    }
    // Written back and read again, the configuration is the same (apart from locations).
    let text = configuration.renderedText
    let again: ConfigurationFile
    do {
        again = try ConfigurationFileParser.parse(text: text, path: "/rendered/spiped.conf")
    } catch {
        fuzzFailure("rendered configuration refused:\n\(text)\n\(error.rendered)")
    }
    if again.globals != configuration.globals || again.pipes.count != configuration.pipes.count
        || !zip(again.pipes, configuration.pipes).allSatisfy({ $0.hasSameSettings(as: $1) }) {
        fuzzFailure("round trip changed the configuration:\n\(text)")
    }
}

/// A key loader that never touches the disk: every key loads, with no warnings.
private let acceptingLoader: ConfigurationKeyFileLoader = { path throws(SpipedProtocolError) in
    (key: SpipedKey(fileContents: Array(path.utf8)), warnings: [])
}
/// Every user and group exists.
private let everyone = ConfigurationAccountLookup(userExists: { _ in true }, groupExists: { _ in true })

/// Checks: no crash, hang or sanitizer report; parsing is deterministic; every diagnostic
/// names a file of the tree and a line within it, and they come in file and line order
/// (a diagnostic overflow last); there are at most `maximumDiagnosticCount` + 1; an accepted
/// configuration obeys the format's rules and survives rendering and re-parsing; `check` with
/// every key loadable agrees with `parse`.
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzedInput(inputBytes(data, count))
    let tree = files(&input)
    let fileSystem = InMemoryConfigurationFileSystem(files: tree)

    let first: Result<ConfigurationFile, ConfigurationErrors>
    do { first = .success(try ConfigurationFileParser.parse(path: mainPath, fileSystem: fileSystem, limits: limits)) } catch { first = .failure(error) }
    let second: Result<ConfigurationFile, ConfigurationErrors>
    do { second = .success(try ConfigurationFileParser.parse(path: mainPath, fileSystem: fileSystem, limits: limits)) } catch { second = .failure(error) }
    if first != second { fuzzFailure("parse is not deterministic") }

    let report = ConfigurationFileParser.check(path: mainPath, fileSystem: fileSystem, limits: limits,
                                               keyLoader: acceptingLoader, accounts: everyone)
    switch first {
    case .success(let configuration):
        checkAccepted(configuration, tree)
        if !report.passed || report.configuration != configuration || !report.diagnostics.isEmpty {
            fuzzFailure("check disagrees with parse: \(report.rendered)")
        }
    case .failure(let errors):
        let diagnostics = errors.diagnostics
        if diagnostics.isEmpty || !diagnostics.contains(where: \.isError) { fuzzFailure("a refusal without an error") }
        if diagnostics.count > limits.maximumDiagnosticCount + 1 { fuzzFailure("\(diagnostics.count) diagnostics") }
        if report.passed || report.diagnostics != diagnostics { fuzzFailure("check disagrees with parse:\n\(report.rendered)\nvs\n\(errors.rendered)") }
        var order: [String] = []
        var previous: (rank: Int, line: Int) = (-1, 0)
        for (index, diagnostic) in diagnostics.enumerated() {
            checkLocation(diagnostic.location, tree, what: "diagnostic '\(diagnostic)'")
            let text = diagnostic.description
            if diagnostic.problem.message.isEmpty || !text.hasPrefix("\(diagnostic.location): ") || text.contains("\n") {
                fuzzFailure("badly formed diagnostic: \(text)")
            }
            if case .tooManyErrors = diagnostic.problem {
                if index != diagnostics.count - 1 { fuzzFailure("overflow not last") }
                continue
            }
            if !order.contains(diagnostic.location.file) { order.append(diagnostic.location.file) }
            let position = (order.firstIndex(of: diagnostic.location.file)!, diagnostic.location.line)
            if position.0 < previous.rank || (position.0 == previous.rank && position.1 < previous.line) {
                fuzzFailure("diagnostics out of order at \(text)")
            }
            previous = position
        }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `config_parse_main` as `main`).
@_cdecl("config_parse_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
