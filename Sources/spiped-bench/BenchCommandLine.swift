import Glibc
import SpipedCrypto
import SpipedCryptoAccelerated

/// Parses `spiped-bench`'s arguments and runs the chosen benchmarks.
enum BenchCommandLine {
    /// The usage text shown by `help` and after a bad argument.
    static let usage = """
        usage: spiped-bench crypto [--json] [--seconds S] [--clock monotonic|thread-cpu]
                                 [--only NAME[,NAME...]] [--backend portable|hardware]

          --json      one JSON object per line: {"name", "backend", "unit", "value"}
          --seconds   minimum measured time per figure (default 0.5)
          --clock     monotonic: real time (default); thread-cpu: CPU time of the benchmark thread
          --only      run only these benchmarks: \(CryptoBenchmarks.all.map(\.name).joined(separator: ", "))
          --backend   run only this backend (default: portable, and hardware when the CPU has it)
        """

    /// Options of the `crypto` subcommand.
    struct CryptoOptions {
        /// Output format.
        var format = ResultOutput.Format.table
        /// Measuring time and clock.
        var measurement = MeasurementSettings(minimumSeconds: 0.5, clock: .monotonic)
        /// Benchmark names to run; nil runs all.
        var onlyNames: [String]? = nil
        /// Backend kind to run; nil runs every available one.
        var backendKind: CryptoBackend.Kind? = nil
    }

    /// Entry point: dispatches the subcommand and exits.
    static func run(arguments: [String]) -> Never {
        guard let command = arguments.first else { exitWithUsage() }
        switch command {
        case "crypto":
            runCrypto(parseCryptoOptions(Array(arguments.dropFirst())))
            flushBlackHole()
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
                guard let text = remaining.popFirst(), let kind = CryptoBackend.Kind(rawValue: text) else { exitWithUsage() }
                options.backendKind = kind
            default:
                exitWithUsage()
            }
        }
        return options
    }

    /// Runs the selected crypto benchmarks on the selected backends, printing as it goes.
    static func runCrypto(_ options: CryptoOptions) {
        var backends = [CryptoBackend.portable]
        if let hardware = CryptoBackendSelection.hardwareIfAvailable {
            backends.append(hardware)
        } else if options.format == .table {
            print("(no hardware backend: the CPU lacks AES-NI/SHA-NI or a self-test failed; portable figures only)")
        }
        if let kind = options.backendKind {
            backends = backends.filter { $0.kind == kind }
        }
        let benchmarks = CryptoBenchmarks.all.filter { options.onlyNames?.contains($0.name) ?? true }
        ResultOutput.printHeader(format: options.format)
        for benchmark in benchmarks {
            // Code that takes no backend runs once; it is the same code either way.
            let runOn = benchmark.usesBackend ? backends : backends.filter { $0.kind == .portable }
            for backend in runOn {
                let measurement = benchmark.measure(backend, options.measurement)
                ResultOutput.printResult(benchmark.result(of: measurement, backendName: backend.kind.rawValue),
                                         format: options.format)
            }
        }
    }

    /// Prints the usage text to standard error and exits with status 64 (EX_USAGE).
    static func exitWithUsage() -> Never {
        var text = usage + "\n"
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
        exit(64)
    }
}
