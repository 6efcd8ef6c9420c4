import Glibc
import SpipedCrypto
import SpipedCryptoAccelerated

/// Parses `spiped-bench`'s arguments and runs the chosen benchmarks.
enum BenchCommandLine {
    /// The usage text shown by `help` and after a bad argument.
    static let usage = """
        usage: spiped-bench crypto [--json] [--seconds S] [--clock monotonic|thread-cpu]
                                 [--only NAME[,NAME...]] [--backend portable|hardware|ENGINE]
               spiped-bench engines

          --json      one JSON object per line: {"name", "backend", "unit", "value"}
          --seconds   minimum measured time per figure (default 0.5)
          --clock     monotonic: real time (default); thread-cpu: CPU time of the benchmark thread
          --only      run only these benchmarks: \(CryptoBenchmarks.all.map(\.name).joined(separator: ", "))
          --backend   run only this backend: portable, hardware (what spiped selects), or one
                      engine by name (default: all of them)
          engines     every engine of every primitive: usable here or why not, its rate in the
                      start-up measurement, and which one spiped uses (marked *)

        Rows: "portable" is the portable code, "hardware" the backend spiped selects (the
        fastest usable engine per primitive), and the SHA-256, AES-256 and DH benchmarks also
        run once per usable hardware engine on its own ("sha-ni", "aes-ni", "vaes", "mulx", ...).
        """

    /// Options of the `crypto` subcommand.
    struct CryptoOptions {
        /// Output format.
        var format = ResultOutput.Format.table
        /// Measuring time and clock.
        var measurement = MeasurementSettings(minimumSeconds: 0.5, clock: .monotonic)
        /// Benchmark names to run; nil runs all.
        var onlyNames: [String]? = nil
        /// Backend row to run ("portable", "hardware" or an engine name); nil runs all.
        var backendName: String? = nil
    }

    /// Entry point: dispatches the subcommand and exits.
    static func run(arguments: [String]) -> Never {
        guard let command = arguments.first else { exitWithUsage() }
        switch command {
        case "crypto":
            runCrypto(parseCryptoOptions(Array(arguments.dropFirst())))
            flushBlackHole()
            exit(0)
        case "engines":
            printEngines()
            exit(0)
        case "help", "-h", "--help":
            print(usage)
            exit(0)
        default:
            exitWithUsage()
        }
    }

    /// Parses the `crypto` options, exiting with the usage text on a mistake.
    static func parseCryptoOptions(_ arguments: [String]) -> CryptoOptions {
        var options = CryptoOptions()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            switch argument {
            case "--json":
                options.format = .jsonLines
            case "--seconds":
                guard let text = remaining.popFirst(), let seconds = Double(text), seconds > 0 else { exitWithUsage() }
                options.measurement.minimumSeconds = seconds
            case "--clock":
                guard let text = remaining.popFirst(), let clock = BenchmarkClock(rawValue: text) else { exitWithUsage() }
                options.measurement.clock = clock
            case "--only":
                guard let text = remaining.popFirst() else { exitWithUsage() }
                let names = text.split(separator: ",").map(String.init)
                let known = Set(CryptoBenchmarks.all.map(\.name))
                guard !names.isEmpty, names.allSatisfy(known.contains) else { exitWithUsage() }
                options.onlyNames = names
            case "--backend":
                guard let text = remaining.popFirst() else { exitWithUsage() }
                let engines = CryptoPrimitive.allCases.flatMap { CryptoBackendSelection.engineVariants(of: $0).map(\.name) }
                guard ["portable", "hardware"].contains(text) || engines.contains(text) else { exitWithUsage() }
                options.backendName = text
            default:
                exitWithUsage()
            }
        }
        return options
    }

    /// Runs the selected crypto benchmarks on the selected backends, printing as it goes.
    static func runCrypto(_ options: CryptoOptions) {
        var common: [(name: String, backend: CryptoBackend)] = [("portable", .portable)]
        if CryptoBackendSelection.best.kind == .hardware {
            common.append(("hardware", CryptoBackendSelection.best))
        } else if options.format == .table {
            print("(no hardware engine usable here: the CPU lacks the features or a self-test failed; portable figures only)")
        }
        let benchmarks = CryptoBenchmarks.all.filter { options.onlyNames?.contains($0.name) ?? true }
        ResultOutput.printHeader(format: options.format)
        for benchmark in benchmarks {
            // Code that takes no backend runs once; it is the same code either way.
            var rows = benchmark.usesBackend ? common : [common[0]]
            if benchmark.usesBackend, let primitive = benchmark.primitive {
                rows += CryptoBackendSelection.engineVariants(of: primitive).filter { $0.name != "portable" }
            }
            for row in rows where options.backendName.map({ $0 == row.name }) ?? true {
                let measurement = benchmark.measure(row.backend, options.measurement)
                ResultOutput.printResult(benchmark.result(of: measurement, backendName: row.name), format: options.format)
            }
        }
    }

    /// `spiped-bench engines`: the selection's report, one engine per line.
    static func printEngines() {
        print(ResultOutput.padded("primitive", 10) + ResultOutput.padded("engine", 10) + ResultOutput.leftPadded("start-up rate", 16)
              + "  verdict")
        for report in CryptoBackendSelection.reports {
            let rate = report.measuredRate.map { ResultOutput.fixed($0, fractionDigits: 0) + " " + report.primitive.rateUnit } ?? "-"
            let verdict = report.isChosen ? "used *" : (report.unusableReason.map { "unusable: " + $0 } ?? "usable")
            print(ResultOutput.padded(report.primitive.displayName, 10) + ResultOutput.padded(report.name, 10)
                  + ResultOutput.leftPadded(rate, 16) + "  " + verdict)
        }
        for problem in CryptoBackendSelection.problems { print("problem: " + problem) }
        print("summary: " + CryptoBackendSelection.summary)
    }

    /// Prints the usage text to standard error and exits with status 64 (EX_USAGE).
    static func exitWithUsage() -> Never {
        var text = usage + "\n"
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
        exit(64)
    }
}
