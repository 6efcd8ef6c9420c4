// `spiped --config FILE [--check]`: validate, or run every pipe of the file.
import Glibc
import SpipedCrypto
import SpipedProtocol
import SpipedProxy
import SpipedSystem

/// Runs (or with `--check` only validates) a configuration file; never returns.
public func runConfigurationFile(_ options: SpipedConfigurationOptions, backend: CryptoBackend,
                                 cryptoNotes: CryptoEngineNotes? = nil) -> Never {
    let path = absolutePath(options.configPath)
    if options.checkOnly {
        let report = ConfigurationFileParser.check(path: path)
        writeStandardError(report.rendered)
        if report.passed {
            let count = report.configuration?.pipes.count ?? 0
            writeStandardOutput("spiped: \(path): configuration OK (\(count) pipe\(count == 1 ? "" : "s"))\n")
            exit(0)
        }
        writeStandardOutput("spiped: \(path): configuration has errors\n")
        exit(1)
    }
    // The globals come from the file; the command line overrides them.
    let globals: GlobalSettings
    do {
        globals = try ConfigurationFileParser.parse(path: path).globals
    } catch {
        writeStandardError(everyConfigurationError(path: path, parseErrors: error).map { "spiped: \($0)\n" }.joined())
        exit(1)
    }
    let level = options.logLevel?.proxyLevel ?? globals.logLevel?.proxyLevel ?? .warning
    var settings = DaemonSettings(foreground: options.foreground, waitForDNS: options.waitForDNS,
                                  pidFilePath: options.pidFilePath ?? globals.pidFile,
                                  useSyslog: options.useSyslog || globals.syslog,
                                  privileges: options.privileges ?? globals.privileges,
                                  logLevel: level,
                                  drainTimeoutSeconds: options.drainTimeoutSeconds ?? globals.drainTimeoutSeconds)
    settings.metricsAddress = options.metricsAddress ?? globals.metrics
    settings.cryptoNotes = cryptoNotes
    runSpipedDaemon(settings: settings, pipes: ConfigurationFilePipeSource(path: path, waitForDNS: options.waitForDNS),
                    backend: backend)
}

/// `path` made absolute against the working directory (a daemon keeps reading the file).
func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    guard let pointer = getcwd(nil, 0) else { return path }
    defer { free(pointer) }
    let directory = String(cString: pointer)
    return directory.hasSuffix("/") ? directory + path : directory + "/" + path
}
