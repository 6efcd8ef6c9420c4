// Fuzz target: the spiped and spipe command-line parsers, on arbitrary argument vectors and
// on vectors assembled from their real options with hostile values.
import FuzzSupport
import SpipedCommandLine
import SpipedSystem

/// Options of spiped and spipe (with and without arguments) and words that are not options.
private let optionWords = ["-e", "-d", "-s", "-t", "-k", "-f", "-g", "-F", "-j", "-n", "-o", "-r", "-R",
                           "-p", "-u", "-D", "-b", "-v", "--syslog", "--", "-", "-ef", "-fg", "-x", "--help",
                           "-n5", "-o1", "-sfoo", "--syslo", "-h", "--version", "--config", "--check", "--log-level",
                           "--metrics", "--pool", "--pool-max-age", "--drain-timeout", "--socket-mode",
                           "--socket-group", "--config=", "--pool=1", "--log-level=info", "--socket-mode=660"]
/// Values that have tripped option parsers: numbers at and past the edges, odd floats,
/// addresses of every form, and empty text.
private let valueWords = ["0", "-0", "1", "-1", "5", "60", "100", "4294967296", "18446744073709551615",
                          "18446744073709551616", "99999999999999999999999", "1e9", "1e309", "inf", "-inf", "nan",
                          "0x10", "010", " 5", "5 ", "+5", "1.5", ".5", "5.", "", "[127.0.0.1]:8025", "[::1]:8025",
                          "localhost:8025", "/tmp/spiped.sock", "host:0", "host:65536", "[1.2.3]:80", ":80",
                          "host:", "[::1]", "root", "nobody:nogroup", ":", "0:0", "/dev/null", "-"]

/// Input layout: 1 byte of mode; bit 0 set: the rest is the argument vector, words separated
/// by NUL bytes; clear: each following byte picks a word — values < 128 index the option
/// table, others the value table, and 0xff takes the next ≤ 16 input bytes as a raw word.
private func argumentVector(_ input: inout FuzzedInput) -> [String] {
    if input.byte() & 1 == 1 {
        return input.rest().split(separator: 0, omittingEmptySubsequences: false).prefix(32)
            .map { String(decoding: $0, as: UTF8.self) }
    }
    var words: [String] = []
    while !input.isExhausted && words.count < 32 {
        let pick = input.byte()
        if pick == 0xff {
            let length = Int(input.byte() & 15)
            words.append(String(decoding: input.take(length).filter { $0 != 0 }, as: UTF8.self))
        } else if pick < 128 {
            words.append(optionWords[Int(pick) % optionWords.count])
        } else {
            words.append(valueWords[Int(pick) % valueWords.count])
        }
    }
    return words
}

/// Checks a parsed address against a fresh parse of its text.
private func checkAddress(_ address: AddressSpec, text: String, what: String) {
    guard let again = try? AddressSpec.parse(text), again == address else {
        fuzzFailure("\(what) \(address) does not match its text \(text)")
    }
}

/// Checks: no crash or hang; parsing is deterministic; -v first means "show the version";
/// an accepted configuration is internally consistent (addresses match their texts, not both
/// -f and -g, a positive timeout, a finite re-resolution interval or none).
private func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzedInput(inputBytes(data, count))
    let arguments = argumentVector(&input)

    let spiped = try? SpipedOptions.parse(arguments)
    if spiped != (try? SpipedOptions.parse(arguments)) { fuzzFailure("spiped parse is not deterministic for \(arguments)") }
    if arguments.first == "-v" && spiped != .showVersion(onStandardOutput: false) { fuzzFailure("spiped \(arguments) did not show the version") }
    if case .run(let options) = spiped {
        checkAddress(options.source, text: options.sourceText, what: "-s")
        checkAddress(options.target, text: options.targetText, what: "-t")
        if options.fast && options.requireForwardSecrecy { fuzzFailure("spiped accepted -f with -g: \(arguments)") }
        if !(options.timeoutSeconds > 0) { fuzzFailure("spiped accepted timeout \(options.timeoutSeconds): \(arguments)") }
        if options.maxConnections < 0 { fuzzFailure("spiped accepted -n giving \(options.maxConnections)") }
        if let interval = options.resolveIntervalSeconds, !interval.isFinite {
            fuzzFailure("spiped re-resolution interval \(interval) from \(arguments)")
        }
        if options.keyFilePath.isEmpty && !arguments.contains("") { fuzzFailure("empty key path from \(arguments)") }
        if options.poolSize != 0 && options.mode != .encrypt { fuzzFailure("spiped accepted --pool without -e: \(arguments)") }
        if let mode = options.socketMode, mode > 0o777 { fuzzFailure("spiped accepted socket mode \(mode): \(arguments)") }
        if !(options.poolMaxAgeSeconds > 0) || options.drainTimeoutSeconds.isNaN || !options.drainTimeoutSeconds.isFinite {
            fuzzFailure("spiped accepted pool age \(options.poolMaxAgeSeconds) / drain \(options.drainTimeoutSeconds): \(arguments)")
        }
    }
    if case .runConfiguration(let options) = spiped, options.configPath.isEmpty {
        fuzzFailure("spiped accepted an empty --config: \(arguments)")
    }

    let spipe = try? SpipeOptions.parse(arguments)
    if spipe != (try? SpipeOptions.parse(arguments)) { fuzzFailure("spipe parse is not deterministic for \(arguments)") }
    if arguments.first == "-v" && spipe != .showVersion(onStandardOutput: false) { fuzzFailure("spipe \(arguments) did not show the version") }
    if case .run(let options) = spipe {
        checkAddress(options.target, text: options.targetText, what: "-t")
        if options.fast && options.requireForwardSecrecy { fuzzFailure("spipe accepted -f with -g: \(arguments)") }
        if !(options.timeoutSeconds > 0) { fuzzFailure("spipe accepted timeout \(options.timeoutSeconds): \(arguments)") }
    }
    return 0
}

/// The executable's entry point (SwiftPM links `options_parse_main` as `main`).
@_cdecl("options_parse_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, callback: { data, count in testOneInput(data, count) })
}
